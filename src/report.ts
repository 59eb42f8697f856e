import { channel } from 'node:diagnostics_channel';
import { performance } from 'node:perf_hooks';
import type { Context } from 'koa';
import { withCallSite } from './call-site.js';
import { describe, RaincheckJobError } from './errors.js';
import type { Job } from './job.js';
import type { DropReason, ResponseOutcome } from './options.js';

/** Hooks that receive reports; a hook that throws or rejects is contained here. */
export interface Reporters {
  onError(error: RaincheckJobError, job: Job, ctx: Context): unknown;
  onDrop(job: Job, outcome: ResponseOutcome, ctx: Context, reason: DropReason): unknown;
}

/** Reports what a job threw, wrapped in a `RaincheckJobError`, or one of its subclasses as it is. */
export function reportFailure(reporters: Reporters, cause: unknown, job: Job, ctx: Context): void {
  contain('onError', () => reporters.onError(wrap(cause, job), job, ctx));
}

function wrap(cause: unknown, job: Job): RaincheckJobError {
  let ours = false;
  try {
    ours = cause instanceof RaincheckJobError && cause.job === job;
  } catch {
    // `instanceof` on a revoked Proxy throws: it is not ours.
  }
  const error = ours ? (cause as RaincheckJobError) : new RaincheckJobError(job, cause);
  // With the `callSite` option: where the job was scheduled, after the frames of where it failed.
  return job.asked?.callSite === undefined ? error : withCallSite(error, job);
}

export function reportDrop(
  reporters: Reporters,
  job: Job,
  outcome: ResponseOutcome,
  ctx: Context,
  reason: DropReason,
): void {
  contain('onDrop', () => reporters.onDrop(job, outcome, ctx, reason));
}

/**
 * A hook must never crash the process or stop the other jobs. Its failure can't go to the hook itself, so
 * it becomes a process warning, which Node prints and `process.on('warning')` can pick up.
 */
function contain(hook: string, call: () => unknown): void {
  const warn = (error: unknown): void => warnHookFailed(hook, error);
  try {
    const result = call();
    if (isThenable(result)) result.then(undefined, warn);
  } catch (error) {
    warn(error);
  }
}

/** A job run outside any request has no app to report to: its failure becomes a process warning. */
export function warnJobFailed(job: Job, cause: unknown): void {
  process.emitWarning(new RaincheckJobError(job, cause));
}

export function warnHookFailed(hook: string, error: unknown): void {
  process.emitWarning(`koa-raincheck: ${hook} threw: ${describe(error)}`, {
    type: 'RaincheckWarning',
    code: 'RAINCHECK_HOOK_FAILED',
  });
}

export function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof (value as PromiseLike<unknown> | null)?.then === 'function';
}

/**
 * `node:diagnostics_channel` channels, which tracing and APM tools subscribe to. `koa-raincheck:job:start`
 * gets `{ job }` when a job starts; `koa-raincheck:job:end` gets `{ job, state, duration, error }` once
 * for every job, whatever its outcome (`duration` in ms, `undefined` for a job that never started: dropped,
 * turned away, coalesced).
 * Nothing is measured or published while nobody subscribes.
 */
export const channels = {
  start: channel('koa-raincheck:job:start'),
  end: channel('koa-raincheck:job:end'),
} as const;

/** Publishes a job's start; returns when it started if anyone will want its duration. */
export function publishStart(job: Job): number | undefined {
  if (channels.start.hasSubscribers) channels.start.publish({ job });
  return channels.end.hasSubscribers ? performance.now() : undefined;
}

export function publishEnd(job: Job, startedAt: number | undefined, error: unknown): void {
  if (!channels.end.hasSubscribers) return;
  const duration = startedAt === undefined ? undefined : performance.now() - startedAt;
  channels.end.publish({ job, state: job.state, duration, error });
}
