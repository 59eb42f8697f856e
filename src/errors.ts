import { format } from 'node:util';
import type { Job } from './job.js';

/**
 * What `onError` receives for a job: a real `Error` whatever the job threw, whose message names the job and
 * whose stack is where the job failed. The original value is its `cause`. Timeouts and overflows are
 * subclasses, so one `instanceof` catches every job report.
 */
export class RaincheckJobError extends Error {
  override readonly name: string = 'RaincheckJobError';
  /** The job concerned. */
  readonly job: Job;

  constructor(
    job: Job,
    cause: unknown,
    message = `koa-raincheck: job ${job.name}() failed: ${describe(cause)}`,
  ) {
    super(message, cause === undefined ? undefined : { cause });
    this.job = job;
    // Keep the frames of the original error, which are where the job went wrong.
    try {
      const stack = cause instanceof Error ? cause.stack : undefined;
      const frames = typeof stack === 'string' ? stack.indexOf('\n    at ') : -1;
      if (frames !== -1) this.stack = `RaincheckJobError: ${this.message}${(stack as string).slice(frames)}`;
    } catch {
      // A revoked Proxy, a throwing `stack` getter: this error's own stack will do.
    }
  }
}

/** A job that ran longer than its timeout: it no longer holds up `drain()`, and its signal is aborted. */
export class RaincheckTimeoutError extends RaincheckJobError {
  override readonly name: string = 'RaincheckTimeoutError';
  /** The timeout it ran past, in ms. */
  readonly timeout: number;

  constructor(job: Job, timeout: number) {
    super(job, undefined, `koa-raincheck: job ${job.name}() timed out after ${timeout} ms`);
    this.timeout = timeout;
  }
}

/** A job not run because `maxWaiting` jobs were already waiting for a free slot. */
export class RaincheckOverflowError extends RaincheckJobError {
  override readonly name: string = 'RaincheckOverflowError';
  /** The bound that was reached. */
  readonly maxWaiting: number;

  constructor(job: Job, maxWaiting: number) {
    super(
      job,
      undefined,
      `koa-raincheck: job ${job.name}() not run: ${maxWaiting} jobs were already waiting for a free slot (maxWaiting)`,
    );
    this.maxWaiting = maxWaiting;
  }
}

/** The reason a running job's signal is aborted when `drain()` gives up waiting for it. */
export class RaincheckDrainTimeoutError extends Error {
  override readonly name: string = 'RaincheckDrainTimeoutError';

  constructor(timeout: number) {
    super(`koa-raincheck: drain() gave up after ${timeout} ms`);
  }
}

/**
 * Why scheduling without `ctx` found no request: `'no-request'`, none is being handled through
 * `raincheck()` in this async context; `'koa-before-2.14'`, `raincheck()` has served an app of a Koa older
 * than 2.14, which has no `asyncLocalStorage` option, so a request of that app cannot be found nor told from
 * no request (thrown whatever `outside` says).
 */
export type OutsideRequestReason = 'no-request' | 'koa-before-2.14';

/**
 * Thrown by scheduling without `ctx` outside a request, when that is set to `'throw'`, and, whatever it is
 * set to, once `raincheck()` has served an app of a Koa older than 2.14 (see `reason`).
 */
export class RaincheckOutsideRequestError extends Error {
  override readonly name: string = 'RaincheckOutsideRequestError';
  /** Why no request was found. */
  readonly reason: OutsideRequestReason;

  constructor(fn: { readonly name: string }, reason: OutsideRequestReason = 'no-request') {
    const name = `${fn.name || 'anonymous'}()`;
    super(
      reason === 'koa-before-2.14'
        ? `koa-raincheck: ${name} was scheduled without ctx, which needs Koa 2.14 or later: raincheck() has ` +
            'served an app of an older Koa, which has no asyncLocalStorage option, so the request being handled ' +
            "cannot be found, nor told from no request ({ outside: 'run' } does not run the call at once either). " +
            `Use ctx.raincheck(${fn.name || 'fn'}, ...args) there, or upgrade Koa and create the app with ` +
            'new Koa({ asyncLocalStorage: true }).'
        : `koa-raincheck: ${name} was scheduled outside any request handled by raincheck(). ` +
            'In a Koa app, create it with new Koa({ asyncLocalStorage: true }) and mount app.use(raincheck()) ' +
            "before the code that schedules; elsewhere, use { outside: 'run' } or setOutsideRequest('run') to " +
            'run such calls at once.',
    );
    this.reason = reason;
  }
}

/** A value in words, for messages. */
export function describe(value: unknown): string {
  // Whatever a job throws is described here, hostile values too (a revoked Proxy, a throwing `message`
  // getter or inspect hook): a report must never fail for its wording.
  try {
    if (value instanceof Error) return String(value.message);
    return format('%o', value);
  } catch {
    return 'a value that cannot be described';
  }
}
