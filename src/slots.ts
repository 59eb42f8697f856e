import type { Context } from 'koa';
import { RaincheckOverflowError } from './errors.js';
import type { Job } from './job.js';

/** A job waiting for a free slot, with the ctx it is reported with. */
export interface Waiting {
  readonly job: Job;
  readonly ctx: Context;
}

/**
 * The concurrency bound (`concurrency`): how many jobs run, and the jobs waiting for a slot, first come
 * first served, at most `maxWaiting` of them. The runner takes a slot as it starts a job and gives it back
 * as the job ends.
 */
export class Slots {
  /** Jobs running: each holds a slot. */
  running = 0;
  readonly concurrency: number;
  readonly #maxWaiting: number;
  /** A queue: taken from `#head` on, emptied once all are taken, so that it never needs shifting. */
  readonly #waiting: Waiting[] = [];
  #head = 0;

  constructor(concurrency: number, maxWaiting: number) {
    this.concurrency = concurrency;
    this.#maxWaiting = maxWaiting;
  }

  /** Jobs waiting for a slot. */
  get waiting(): number {
    return this.#waiting.length - this.#head;
  }

  /** Queues a job for a slot; past `maxWaiting`, turns it away with the error to drop it with. */
  wait(job: Job, ctx: Context): RaincheckOverflowError | undefined {
    if (this.#waiting.length - this.#head >= this.#maxWaiting) {
      return new RaincheckOverflowError(job, this.#maxWaiting);
    }
    this.#waiting.push({ job, ctx });
    return undefined;
  }

  /** The next waiting job, taken off the list, if a slot is free for it (the caller takes the slot). */
  next(): Waiting | undefined {
    if (this.running >= this.concurrency || this.#head === this.#waiting.length) return undefined;
    const next = this.#waiting[this.#head] as Waiting;
    this.#waiting[this.#head++] = undefined as unknown as Waiting; // let it go
    if (this.#head === this.#waiting.length) {
      this.#waiting.length = 0;
      this.#head = 0;
    }
    return next;
  }

  /** Takes `job` off the list (it was cancelled): the ctx it waited with; `undefined` if it did not wait. */
  remove(job: Job): Context | undefined {
    for (let i = this.#head; i < this.#waiting.length; i++) {
      const waiting = this.#waiting[i] as Waiting;
      if (waiting.job !== job) continue;
      this.#waiting.splice(i, 1);
      return waiting.ctx;
    }
    return undefined;
  }
}
