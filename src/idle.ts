import type { BusyList } from './busy.js';
import { RaincheckDrainTimeoutError } from './errors.js';
import type { Job } from './job.js';

/** What `drain()` resolves with. */
export interface DrainResult {
  /** `true` when every job settled in time. */
  readonly drained: boolean;
  /** The jobs still unfinished when the timeout came (awaiting their response, waiting, or running). */
  readonly unfinished: readonly Job[];
}

/**
 * Who waits for no job to be pending: `onIdle()` and `drain()`. The runner knows when the last pending job
 * settles, and wakes them then.
 */
export class IdleWaiters {
  /** Read by the runner as each job settles: while it is empty, nobody is to be woken. */
  waiters: Array<() => void> = [];

  /** Resolves at the next `wake()`. */
  wait(): Promise<void> {
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const resolve of waiters) resolve();
  }

  /**
   * Resolves when every pending job has settled, jobs scheduled meanwhile included; or, after `timeout` ms,
   * with the jobs still unfinished (named by `busy`), whose signals it aborts. Never rejects.
   */
  async drain(pending: number, busy: BusyList, timeout: number): Promise<DrainResult> {
    if (pending === 0) return { drained: true, unfinished: [] };
    if (timeout === Number.POSITIVE_INFINITY) {
      await this.wait();
      return { drained: true, unfinished: [] };
    }
    let timer: NodeJS.Timeout | undefined;
    const gaveUp = new Promise<true>((resolve) => {
      timer = setTimeout(resolve, timeout, true);
    });
    const timedOut = await Promise.race([this.wait(), gaveUp]);
    clearTimeout(timer);
    if (timedOut !== true) return { drained: true, unfinished: [] };
    const unfinished = busy.unsettled();
    const reason = new RaincheckDrainTimeoutError(timeout);
    for (const job of unfinished) job.abort(reason);
    return { drained: false, unfinished };
  }
}
