import type { Slots } from './slots.js';

/** Counts of a middleware's jobs. Every scheduled job is in exactly one of the last eight. */
export interface RaincheckStats {
  /** Jobs made by `ctx.raincheck()` (calls collapsed into an earlier one are not jobs). */
  readonly scheduled: number;
  /** Calls collapsed into an identical earlier call of the same request. */
  readonly deduped: number;
  /** Jobs waiting for their response to be over. */
  readonly awaitingResponse: number;
  /** Jobs waiting for a free slot (`concurrency`). */
  readonly waiting: number;
  readonly running: number;
  readonly succeeded: number;
  readonly failed: number;
  readonly timedOut: number;
  /** Jobs not run: `runWhen` said no, `maxWaiting` was reached, or they were cancelled. */
  readonly dropped: number;
  /** Jobs not run because they joined an identical job of another request (`coalesce()`). */
  readonly coalesced: number;
}

/**
 * The counts behind `stats`, kept by the runner as jobs move on: each job is counted twice, as it is
 * scheduled and as it ends. Waiting and running jobs are the slots' own figures, and the jobs awaiting
 * their response are the pending ones that are neither: nothing to count as a job is released.
 */
export class Counts {
  scheduled = 0;
  deduped = 0;
  succeeded = 0;
  failed = 0;
  timedOut = 0;
  dropped = 0;
  coalesced = 0;
  readonly #slots: Slots;

  constructor(slots: Slots) {
    this.#slots = slots;
  }

  /** Jobs scheduled and not yet settled (awaiting their response, waiting for a slot, or running). */
  get pending(): number {
    return this.scheduled - this.succeeded - this.failed - this.timedOut - this.dropped - this.coalesced;
  }

  get stats(): RaincheckStats {
    return {
      scheduled: this.scheduled,
      deduped: this.deduped,
      awaitingResponse: this.pending - this.#slots.waiting - this.#slots.running,
      succeeded: this.succeeded,
      failed: this.failed,
      timedOut: this.timedOut,
      dropped: this.dropped,
      coalesced: this.coalesced,
      waiting: this.#slots.waiting,
      running: this.#slots.running,
    };
  }
}
