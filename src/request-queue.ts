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
  /** Every dedupe key seen in this request: identical calls collapse for the request's whole life. */
  readonly #jobsByKey = new Map<string, Job>();
  #waiting: Job[] = [];
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
      const earlier = this.#jobsByKey.get(key);
      if (earlier !== undefined) return new Scheduled(earlier, true);
    }
    const job = new Job(fn, args, key);
    if (key !== undefined) this.#jobsByKey.set(key, job);
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
      this.#outcome = outcome;
      const jobs = this.#waiting;
      this.#waiting = [];
      if (jobs.length > 0) this.#release(jobs, outcome);
    });
  }

  #release(jobs: readonly Job[], outcome: ResponseOutcome): void {
    if (this.#runner.settings.runAsync) {
      void this.#runner.release(jobs, outcome, this.#ctx);
      return;
    }
    const previous = this.#inOrder;
    this.#inOrder =
      previous === undefined
        ? this.#runner.release(jobs, outcome, this.#ctx)
        : previous.then(() => this.#runner.release(jobs, outcome, this.#ctx));
  }
}
