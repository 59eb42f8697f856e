import type { Job } from './job.js';
import type { ResponseOutcome } from './options.js';

/**
 * @internal What a tracing integration (koa-raincheck/otel) hooks into: every job's scheduling, its
 * function's call (to run it inside a span), and its end, whatever the outcome. One per process; while
 * none is installed, each hook costs a load and a comparison.
 */
export interface Instrument {
  /** In the call that made the job (its scheduling context). */
  scheduled(job: Job): void;
  /** Calls `call()` (the job's function), in the job's context; returns what it returns. */
  run(job: Job, ctx: unknown, call: () => unknown): unknown;
  /**
   * Once per job, when it has ended in `job.state`: with what it threw or timed out with, or, for a dropped
   * job, the overflow error or the outcome `runWhen` said no to.
   */
  ended(job: Job, ctx: unknown, error: unknown, outcome: ResponseOutcome | undefined): void;
}

export let instrument: Instrument | undefined;

/** @internal Installs `next` (or removes it, with `undefined`); returns the one it replaces. */
export function setInstrument(next: Instrument | undefined): Instrument | undefined {
  const previous = instrument;
  instrument = next;
  return previous;
}
