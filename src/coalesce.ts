import type { Job } from './job.js';

/**
 * The jobs that identical coalescing jobs of other requests join instead of running: by dedupe key, each
 * one while it waits for a slot or runs, and a job that succeeded for its `ttl` after that. Nothing else
 * is kept, so the index does not grow with traffic: an entry goes when its job fails or times out, when
 * it succeeds without a ttl, or (a timer, unref'd) when its ttl is over.
 */
export class CoalescingIndex {
  readonly #byKey = new Map<string, Entry>();

  /**
   * The job `job` should join, if there is one; otherwise `job` becomes the one that later identical jobs
   * join, and `undefined` is returned. A job without a key (arguments that cannot be fingerprinted) never
   * coalesces.
   */
  joinOrEnter(job: Job): Job | undefined {
    const key = job.key;
    if (key === undefined) return undefined;
    const entry = this.#byKey.get(key);
    if (entry !== undefined && entry.job !== job) {
      if (entry.expires === undefined || entry.expires > performance.now()) return entry.job;
      clearTimeout(entry.timer); // its ttl is over: this one takes its place
    }
    this.#byKey.set(key, { job, expires: undefined, timer: undefined });
    return undefined;
  }

  /**
   * `job` ended, or was dropped while waiting for a slot (turned away by `maxWaiting`, or cancelled). Only
   * a job that succeeded, with a ttl, stays: for its ttl, counted from now.
   */
  ended(job: Job, ttl: number): void {
    const key = job.key as string;
    const entry = this.#byKey.get(key);
    if (entry === undefined || entry.job !== job) return;
    if (job.state !== 'succeeded' || ttl === 0) {
      this.#byKey.delete(key);
      return;
    }
    entry.expires = performance.now() + ttl;
    entry.timer = setTimeout(() => {
      if (this.#byKey.get(key) === entry) this.#byKey.delete(key);
    }, ttl).unref();
  }
}

interface Entry {
  readonly job: Job;
  /** `performance.now()` when a succeeded job stops absorbing; `undefined` while it waits or runs. */
  expires: number | undefined;
  timer: NodeJS.Timeout | undefined;
}
