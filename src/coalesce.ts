import { type Job, keyOfJob } from './job.js';

/**
 * The jobs that identical coalescing jobs of other requests join instead of running: by dedupe key, each
 * one while it waits for a slot or runs, and a job that succeeded for its `ttl` after that. Nothing else
 * is kept, so the index does not grow with traffic: an entry goes when its job fails or times out, when
 * it succeeds without a ttl, or once its ttl is over (when an identical job looks it up, or at the latest
 * at the next sweep: one unref'd timer for the whole index, every shortest ttl, not one per job).
 */
export class CoalescingIndex {
  readonly #byKey = new Map<string, Entry>();
  #sweeper: NodeJS.Timeout | undefined;
  #sweepEvery = Number.POSITIVE_INFINITY;

  /**
   * The job `job` should join, if there is one; otherwise `job` becomes the one that later identical jobs
   * join, and `undefined` is returned. A job without a key (arguments that cannot be fingerprinted) never
   * coalesces.
   */
  joinOrEnter(job: Job): Job | undefined {
    const key = keyOfJob(job);
    if (key === undefined) return undefined;
    const entry = this.#byKey.get(key);
    // Infinity while its job waits or runs: no clock read for that, the common case.
    if (entry !== undefined && entry.job !== job) {
      if (entry.expires === Number.POSITIVE_INFINITY || entry.expires > performance.now()) return entry.job;
    }
    this.#byKey.set(key, { job, expires: Number.POSITIVE_INFINITY });
    return undefined;
  }

  /**
   * `job` ended, or was dropped while waiting for a slot (turned away by `maxWaiting`, or cancelled). Only
   * a job that succeeded, with a ttl, stays: for its ttl, counted from now.
   */
  ended(job: Job, ttl: number): void {
    const key = keyOfJob(job) as string;
    const entry = this.#byKey.get(key);
    if (entry === undefined || entry.job !== job) return;
    if (job.state !== 'succeeded' || ttl === 0) {
      this.#byKey.delete(key);
      return;
    }
    entry.expires = performance.now() + ttl;
    if (ttl < this.#sweepEvery || this.#sweeper === undefined) this.#sweepAt(Math.min(ttl, this.#sweepEvery));
  }

  #sweepAt(every: number): void {
    clearInterval(this.#sweeper);
    this.#sweepEvery = every;
    this.#sweeper = setInterval(() => this.#sweep(), every).unref();
  }

  /** Lets go of the jobs whose ttl is over; stops sweeping once none is left. */
  #sweep(): void {
    const now = performance.now();
    for (const [key, entry] of this.#byKey) if (entry.expires <= now) this.#byKey.delete(key);
    if (this.#byKey.size === 0) {
      clearInterval(this.#sweeper);
      this.#sweeper = undefined;
      this.#sweepEvery = Number.POSITIVE_INFINITY;
    }
  }
}

interface Entry {
  readonly job: Job;
  /** `performance.now()` when a succeeded job stops absorbing; Infinity while it waits or runs. */
  expires: number;
}
