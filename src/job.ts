import { type Fingerprint, keyOf } from './key.js';

/** Where a job is in its life. Every job ends in exactly one of the last three. */
export type JobState = 'waiting' | 'running' | 'succeeded' | 'failed' | 'dropped';

/** One function call to make after the response: what `ctx.raincheck(fn, ...args)` queues. */
export class Job<Args extends readonly unknown[] = readonly unknown[]> {
  /** The function to call. */
  readonly fn: (...args: Args) => unknown;
  /** The arguments to call it with. */
  readonly args: Args;
  /** @internal What identical calls are recognised by; `undefined` when the job is not deduped. */
  readonly fingerprint: Fingerprint | undefined;
  state: JobState = 'waiting';
  #always = false;
  #key: string | undefined;

  constructor(fn: (...args: Args) => unknown, args: Args, fingerprint: Fingerprint | undefined) {
    this.fn = fn;
    this.args = args;
    this.fingerprint = fingerprint;
  }

  /**
   * The dedupe key, a string equal for identical calls (the same function, equal arguments), or `undefined`
   * when the job is not deduped. Made on first read.
   */
  get key(): string | undefined {
    if (this.#key === undefined && this.fingerprint !== undefined)
      this.#key = keyOf(this.fn, this.fingerprint);
    return this.#key;
  }

  /** The function's name, for reports. */
  get name(): string {
    return this.fn.name || 'anonymous';
  }

  /** Whether the job runs even when the request failed (see `Scheduled#always()`). */
  get runsAlways(): boolean {
    return this.#always;
  }

  /** @internal */
  markAlways(): void {
    this.#always = true;
  }
}

/** What `ctx.raincheck(fn, ...args)` returns. */
export class Scheduled {
  /** The job this call is part of: a new one, or the earlier identical one it collapsed into. */
  readonly job: Job;
  /** `true` when this call collapsed into an identical call made earlier in the same request. */
  readonly deduped: boolean;

  constructor(job: Job, deduped: boolean) {
    this.job = job;
    this.deduped = deduped;
  }

  /**
   * Runs the job even when the request fails (Laravel's `->always()`). Call it right away: it has no effect
   * on a job that has already started or been dropped.
   */
  always(): this {
    this.job.markAlways();
    return this;
  }
}
