import type { Context } from 'koa';
import { Job, Scheduled } from './job.js';
import { dedupeKey } from './key.js';
import type { ResponseOutcome } from './options.js';
import { onResponseEnd } from './response-end.js';
import type { Runner } from './runner.js';

/**
 * One request's jobs: collected in order while the request is handled, collapsed by dedupe key, and
 * released to the runner once the response is over. Jobs scheduled after that (from a timer, from inside a
 * job) are released at once, under the same outcome, so none is dropped for being late.
 */
export class RequestQueue {
  readonly #ctx: Context;
  readonly #runner: Runner;
  /**
   * Every keyed job of this request, for its whole life: identical calls collapse even after the first one
   * ran. The first is kept on its own, so that a request with one job makes no Map.
   */
  #firstKeyed: Job | undefined;
  #jobsByKey: Map<string, Job> | undefined;
  /** Jobs waiting for the response to be over; handed to the runner then. */
  readonly #waiting: Job[] = [];
  #outcome: ResponseOutcome | undefined;
  /** With `runAsync: false`, the end of the chain that late jobs are appended to. */
  #inOrder: Promise<void> | undefined;

  constructor(ctx: Context, runner: Runner) {
    this.#ctx = ctx;
    this.#runner = runner;
  }

  add(fn: (...args: readonly unknown[]) => unknown, args: readonly unknown[]): Scheduled {
    const { settings } = this.#runner;
    const key = settings.dedupe ? dedupeKey(fn, args) : undefined;
    if (key !== undefined) {
      const earlier = this.#find(key);
      if (earlier !== undefined) return new Scheduled(earlier, true);
    }
    const job = new Job(fn, args, key);
    if (key !== undefined) this.#remember(key, job);
    this.#runner.admit();
    if (settings.immediate) this.#runner.runNow(job, this.#ctx);
    else if (this.#outcome === undefined) this.#waiting.push(job);
    else this.#release([job], this.#outcome);
    return new Scheduled(job, false);
  }

  /** Called once the downstream middleware has settled: from here on, wait for the response to be over. */
  handOff(threw: boolean, error: unknown): void {
    if (this.#runner.settings.immediate) return;
    const { res } = this.#ctx;
    onResponseEnd(res, (aborted) => {
      const outcome: ResponseOutcome = { status: res.statusCode, threw, error, aborted };
      this.#outcome = outcome; // from here on add() releases jobs itself: #waiting is done with
      if (this.#waiting.length > 0) this.#release(this.#waiting, outcome);
    });
  }

  #find(key: string): Job | undefined {
    if (this.#jobsByKey !== undefined) return this.#jobsByKey.get(key);
    return this.#firstKeyed?.key === key ? this.#firstKeyed : undefined;
  }

  #remember(key: string, job: Job): void {
    if (this.#jobsByKey !== undefined) this.#jobsByKey.set(key, job);
    else if (this.#firstKeyed === undefined) this.#firstKeyed = job;
    else
      this.#jobsByKey = new Map([
        [this.#firstKeyed.key as string, this.#firstKeyed],
        [key, job],
      ]);
  }

  #release(jobs: readonly Job[], outcome: ResponseOutcome): void {
    const previous = this.#inOrder;
    if (previous === undefined) this.#inOrder = this.#runner.release(jobs, outcome, this.#ctx);
    else this.#inOrder = previous.then(() => this.#runner.release(jobs, outcome, this.#ctx));
  }
}
