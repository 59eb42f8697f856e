import { type Fingerprint, keyOf } from './key.js';
import { typeName } from './options.js';

/** Where a job is in its life. Every job ends in exactly one of the last four. */
export type JobState = 'waiting' | 'running' | 'succeeded' | 'failed' | 'timedOut' | 'dropped';

/** One function call to make after the response: what `ctx.raincheck(fn, ...args)` queues. */
export class Job<Args extends readonly unknown[] = readonly unknown[]> {
  /** The function to call. */
  readonly fn: (...args: Args) => unknown;
  /** The arguments to call it with. */
  readonly args: Args;
  /** @internal What identical calls are recognised by; `undefined` when the job is not deduped. */
  readonly fingerprint: Fingerprint | undefined;
  state: JobState = 'waiting';
  /** @internal The per-call timeout in ms, if `.timeout()` set one. */
  timeoutMs: number | undefined;
  /** @internal The runner's list of unsettled jobs (a linked list: no hashing per job). */
  previousUnsettled: Job | undefined;
  /** @internal */
  nextUnsettled: Job | undefined;
  /** @internal The next job of the same request (its queue's list). */
  nextInRequest: Job | undefined;
  #always = false;
  #key: string | undefined;
  #controller: AbortController | undefined;
  #abortReason: unknown;

  constructor(fn: (...args: Args) => unknown, args: Args, fingerprint: Fingerprint | undefined) {
    this.fn = fn;
    this.args = args;
    this.fingerprint = fingerprint;
  }

  /** The function's name, for reports. */
  get name(): string {
    return this.fn.name || 'anonymous';
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

  /** Whether the job runs even when the request failed (see `Scheduled#always()`). */
  get runsAlways(): boolean {
    return this.#always;
  }

  /**
   * Aborted when the job times out or `drain()` gives up on it, with a `RaincheckTimeoutError` or a
   * `RaincheckDrainTimeoutError` as its reason. Made on first read; inside the job, `jobSignal()` reads it.
   */
  get signal(): AbortSignal {
    if (this.#controller === undefined) {
      this.#controller = new AbortController();
      if (this.#abortReason !== undefined) this.#controller.abort(this.#abortReason);
    }
    return this.#controller.signal;
  }

  /** @internal */
  markAlways(): void {
    this.#always = true;
  }

  /** @internal Aborts the signal, now if it was made, or as it is made. */
  abort(reason: unknown): void {
    if (this.#abortReason !== undefined) return;
    this.#abortReason = reason;
    this.#controller?.abort(reason);
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

  /**
   * Gives this job its own timeout in ms, instead of the `timeout` option's. Call it right away: it has no
   * effect on a job that has already started.
   * @throws {TypeError} when `ms` is not a positive number.
   */
  timeout(ms: number): this {
    if (typeof ms !== 'number' || !(ms > 0)) {
      throw new TypeError(
        `Expected \`ms\` to be a positive number, got \`${typeof ms === 'number' ? ms : typeName(ms)}\``,
      );
    }
    this.job.timeoutMs = ms;
    return this;
  }
}

/** Where a job's reports go: its middleware's `onError`, with its request's `ctx`. */
export interface JobReports {
  report(error: unknown, job: Job, ctx: unknown): void;
}

let current: Job | undefined;
let currentReports: JobReports | undefined;
let currentCtx: unknown;

/**
 * The `AbortSignal` of the job being started: call it at the top of a job, before its first `await`. It is
 * aborted when the job times out or `drain()` gives up on it, so the job can stop cooperatively:
 *
 * ```js
 * async function sendEmail(to) {
 *   const signal = jobSignal();
 *   await fetch(mailApi, { method: 'POST', body: to, signal });
 * }
 * ```
 * @throws {Error} when called anywhere else (after an `await`, or outside a job): pass the signal on from
 * the top of the job instead.
 */
export function jobSignal(): AbortSignal {
  if (current === undefined) {
    throw new Error(
      'jobSignal() must be called at the top of a job, before its first await: read it there and pass it on',
    );
  }
  return current.signal;
}

/**
 * A function that reports an error of the job being started to where its failures go (`onError`, Koa's
 * `'error'` event by default) without failing it: for jobs that retry, so that each failed attempt is
 * seen. Call it at the top of the job, like `jobSignal()`. Outside a request's job (a job run at once
 * outside any request), reports become process warnings.
 * @throws {Error} when called anywhere else.
 */
export function jobReporter(): (error: unknown) => void {
  const reporter = currentReporter();
  if (reporter === undefined) {
    throw new Error(
      'jobReporter() must be called at the top of a job, before its first await: read it there and pass it on',
    );
  }
  return reporter;
}

/** @internal `jobReporter()`, or `undefined` outside the start of a job. */
export function currentReporter(): ((error: unknown) => void) | undefined {
  if (current === undefined) return undefined;
  const job = current;
  const reports = currentReports;
  const ctx = currentCtx;
  return (error) => {
    if (reports === undefined) process.emitWarning(error instanceof Error ? error : String(error));
    else reports.report(error, job, ctx);
  };
}

/** @internal Calls the job's function with the job as the one `jobSignal()` and `jobReporter()` answer for. */
export function callJob(job: Job, reports?: JobReports, ctx?: unknown): unknown {
  const previous = current;
  const previousReports = currentReports;
  const previousCtx = currentCtx;
  current = job;
  currentReports = reports;
  currentCtx = ctx;
  try {
    return job.fn(...job.args);
  } finally {
    current = previous;
    currentReports = previousReports;
    currentCtx = previousCtx;
  }
}
