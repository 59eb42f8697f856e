import { debuglog, format } from 'node:util';
import type { Context } from 'koa';
import type { Job } from './job.js';
import type { ResponseOutcome } from './options.js';

/**
 * What a failed job is reported as: a real `Error` whatever the job threw, whose message names the job and
 * whose stack is where the job failed. The original value is its `cause`.
 */
export class RaincheckJobError extends Error {
  override readonly name = 'RaincheckJobError';
  /** The job that failed. */
  readonly job: Job;

  constructor(job: Job, cause: unknown) {
    super(`koa-raincheck: job ${job.name}() failed: ${describe(cause)}`, { cause });
    this.job = job;
    // Keep the frames of the original error, which are where the job went wrong.
    if (cause instanceof Error && typeof cause.stack === 'string') {
      const frames = cause.stack.indexOf('\n    at ');
      if (frames !== -1) this.stack = `${this.name}: ${this.message}${cause.stack.slice(frames)}`;
    }
  }
}

function describe(value: unknown): string {
  if (value instanceof Error) return value.message;
  return format('%o', value);
}

/** Hooks that receive reports; a hook that throws or rejects is contained here. */
export interface Reporters {
  onError(error: RaincheckJobError, job: Job, ctx: Context): unknown;
  onDrop(job: Job, outcome: ResponseOutcome, ctx: Context): unknown;
}

export function reportFailure(reporters: Reporters, cause: unknown, job: Job, ctx: Context): void {
  const error = new RaincheckJobError(job, cause);
  contain('onError', () => reporters.onError(error, job, ctx));
}

export function reportDrop(reporters: Reporters, job: Job, outcome: ResponseOutcome, ctx: Context): void {
  contain('onDrop', () => reporters.onDrop(job, outcome, ctx));
}

/** The default `onError`: Koa's own error channel, as for errors in middleware. */
export function emitOnApp(error: RaincheckJobError, _job: Job, ctx: Context): void {
  ctx.app.emit('error', error, ctx);
}

const debug = debuglog('koa-raincheck');

/** The default `onDrop`: a line under `NODE_DEBUG=koa-raincheck`. */
export function logDrop(job: Job, outcome: ResponseOutcome, ctx: Context): void {
  debug('dropped job %s() of %s %s: %s', job.name, ctx.method, ctx.url, dropReason(outcome));
}

/** Why a job of a request with this outcome is not run, in words. */
export function dropReason(outcome: ResponseOutcome): string {
  if (outcome.threw) return `the request failed (${describe(outcome.error)})`;
  if (outcome.status >= 400) return `the response status was ${outcome.status}`;
  return 'runWhen() returned false';
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

export function warnHookFailed(hook: string, error: unknown): void {
  process.emitWarning(`koa-raincheck: ${hook} threw: ${describe(error)}`, {
    type: 'RaincheckWarning',
    code: 'RAINCHECK_HOOK_FAILED',
  });
}

export function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof (value as PromiseLike<unknown> | null)?.then === 'function';
}
