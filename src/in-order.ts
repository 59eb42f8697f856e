import type { Job } from './job.js';

/**
 * With `runAsync: false`: a request's jobs run one after another, each started once the one before it has
 * settled (the runner reports every job that settles to `settled()`).
 */
export class InOrder {
  /** What ends the wait of a chain for a job not yet settled. */
  readonly #waits = new Map<Job, () => void>();

  /**
   * Hands the jobs from `first` to `last` of a request's list to `release` one by one; after one that
   * `release` started (it returns `true`), waits for that job to settle. Resolves after the last; never
   * rejects (`release` never throws).
   */
  async chain(first: Job, last: Job, release: (job: Job) => boolean): Promise<void> {
    for (let job = first; ; job = job.nextInRequest as Job) {
      if (release(job)) await this.#end(job);
      if (job === last) return;
    }
  }

  /** Resolves once `job` has settled; `undefined` if it has (a job that ended at once, or coalesced). */
  #end(job: Job): Promise<void> | undefined {
    if (job.state !== 'waiting' && job.state !== 'running') return undefined;
    return new Promise((resolve) => this.#waits.set(job, resolve));
  }

  /** `job` settled: the chain waiting for it, if any, goes on. */
  settled(job: Job): void {
    const resolve = this.#waits.get(job);
    if (resolve === undefined) return;
    this.#waits.delete(job);
    resolve();
  }
}
