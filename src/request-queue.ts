import type { Context } from 'koa';
import { Job, Scheduled } from './job.js';
import { type Fingerprint, fingerprintOf, keyOf, sameFingerprint } from './key.js';
import type { ResponseOutcome } from './options.js';
import { onResponseEnd } from './response-end.js';
import type { Runner } from './runner.js';

/** How many deduped jobs a request may have before they are looked up by key instead of one by one. */
const INDEX_AFTER = 16;

/**
 * One request's jobs: collected in order while the request is handled, collapsed by dedupe key, and
 * released to the runner once the response is over. Jobs scheduled after that (from a timer, from inside a
 * job) are released at once, under the same outcome, so none is dropped for being late.
 */
export class RequestQueue {
  readonly #ctx: Context;
  readonly #runner: Runner;
  /**
   * Every deduped job of this request, for its whole life: identical calls collapse even after the first
   * one ran. A few are searched one by one, comparing function identity first; past INDEX_AFTER, by key.
   */
  #keyed: Job[] | undefined;
  #byKey: Map<string, Job> | undefined;
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
    const fingerprint = settings.dedupe ? fingerprintOf(args) : undefined;
    if (fingerprint !== undefined) {
      const earlier = this.#find(fn, fingerprint);
      if (earlier !== undefined) {
        this.#runner.countDeduped();
        return new Scheduled(earlier, true);
      }
    }
    const job = new Job(fn, args, fingerprint);
    if (fingerprint !== undefined) this.#remember(job);
    this.#runner.admit(job);
    if (settings.immediate) this.#runner.runNow(job, this.#ctx);
    else if (this.#outcome === undefined) this.#waiting.push(job);
    else this.#release([job], this.#outcome, false);
    return new Scheduled(job, false);
  }

  /** Called once the downstream middleware has settled: from here on, wait for the response to be over. */
  handOff(threw: boolean, error: unknown): void {
    if (this.#runner.settings.immediate) return;
    const { res } = this.#ctx;
    onResponseEnd(res, (aborted) => {
      const outcome: ResponseOutcome = { status: res.statusCode, threw, error, aborted };
      this.#outcome = outcome; // from here on add() releases jobs itself: #waiting is done with
      if (this.#waiting.length > 0) this.#release(this.#waiting, outcome, true);
    });
  }

  #find(fn: object, fingerprint: Fingerprint): Job | undefined {
    if (this.#byKey !== undefined) return this.#byKey.get(keyOf(fn, fingerprint));
    if (this.#keyed === undefined) return undefined;
    for (const job of this.#keyed) {
      if (job.fn === fn && sameFingerprint(job.fingerprint as Fingerprint, fingerprint)) return job;
    }
    return undefined;
  }

  #remember(job: Job): void {
    if (this.#byKey !== undefined) {
      this.#byKey.set(job.key as string, job);
    } else if (this.#keyed === undefined) {
      this.#keyed = [job];
    } else {
      this.#keyed.push(job);
      if (this.#keyed.length > INDEX_AFTER) {
        this.#byKey = new Map(this.#keyed.map((keyed) => [keyed.key as string, keyed]));
        this.#keyed = undefined;
      }
    }
  }

  /** `now`: the caller is on a tick of its own (the response's `'close'`, or the downstream's settling). */
  #release(jobs: readonly Job[], outcome: ResponseOutcome, now: boolean): void {
    const previous = this.#inOrder;
    if (previous === undefined) this.#inOrder = this.#runner.release(jobs, outcome, this.#ctx, now);
    else this.#inOrder = previous.then(() => this.#runner.release(jobs, outcome, this.#ctx, now));
  }
}
