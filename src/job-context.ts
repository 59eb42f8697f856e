import { AsyncLocalStorage } from 'node:async_hooks';
import { type Instrument, instrument } from './instrument.js';
import type { Job, JobReports } from './job.js';

/** The job being run, with where its reports go: what `jobSignal()` and `jobReporter()` answer for. */
interface Call {
  readonly job: Job;
  readonly reports: JobReports | undefined;
  readonly ctx: unknown;
}

/** The job whose function is being called right now, synchronously: free to keep, and enough at a job's top. */
let current: Call | undefined;

/**
 * With `trackJobs: true`, the job a continuation belongs to, for `jobSignal()` and `jobReporter()` after its
 * `await`s and in its callbacks. An AsyncLocalStorage of its own costs an entry per job, and on Node 20 and
 * 22 its first use slows every promise of the process (async_hooks): so it is used only when asked for.
 */
const tracked = new AsyncLocalStorage<Call>();

/**
 * The `AbortSignal` of the job this is called from. It is aborted when the job times out or `drain()` gives
 * up on it, so the job can stop cooperatively:
 *
 * ```js
 * async function sendEmail(to) {
 *   const signal = jobSignal();
 *   await fetch(mailApi, { method: 'POST', body: to, signal });
 * }
 * ```
 * Call it at the top of the job, before its first `await`; with `raincheck({ trackJobs: true })`, anywhere
 * inside the job (after `await`s, in callbacks it makes).
 * @throws {Error} when called outside a job, or after an `await` in a job without `trackJobs`.
 */
export function jobSignal(): AbortSignal {
  const call = current ?? tracked.getStore();
  if (call === undefined) throw notInAJob('jobSignal');
  return call.job.signal;
}

/**
 * A function that reports an error of the job this is called from to where its failures go (`onError`,
 * Koa's `'error'` event by default) without failing it: for jobs that retry, so that each failed attempt is
 * seen. Where it can be called: as for `jobSignal()`. Outside a request's job (a job run at once outside any
 * request), reports become process warnings.
 * @throws {Error} when called outside a job, or after an `await` in a job without `trackJobs`.
 */
export function jobReporter(): (error: unknown) => void {
  const reporter = currentReporter();
  if (reporter === undefined) throw notInAJob('jobReporter');
  return reporter;
}

function notInAJob(name: string): Error {
  return new Error(
    `${name}() must be called inside a job: at its top, before its first await (read it there and pass it ` +
      'on), or anywhere in it with raincheck({ trackJobs: true })',
  );
}

/** @internal `jobReporter()`, or `undefined` outside a job. */
export function currentReporter(): ((error: unknown) => void) | undefined {
  const call = current ?? tracked.getStore();
  if (call === undefined) return undefined;
  const { job, reports, ctx } = call;
  return (error) => {
    if (reports === undefined) process.emitWarning(error instanceof Error ? error : String(error));
    else reports.report(error, job, ctx);
  };
}

/**
 * @internal Calls the job's function in the async context it was scheduled in (when it was kept), as the
 * job that `jobSignal()` and `jobReporter()` answer for.
 */
export function callJob(job: Job, reports?: JobReports, ctx?: unknown, track?: boolean): unknown {
  // One object for the three, not three module variables: each store of a new object into a module
  // variable costs a write-barrier call.
  const call: Call = { job, reports, ctx };
  const enter = track === true ? enterTracked : enterCurrent;
  const scope = job.scope;
  return scope === undefined ? enter(call) : scope.runInAsyncScope(enter, undefined, call);
}

function enterCurrent(call: Call): unknown {
  const previous = current;
  current = call;
  try {
    return instrument === undefined ? invoke(call.job) : instrumented(call);
  } finally {
    current = previous;
  }
}

function enterTracked(call: Call): unknown {
  const previous = current;
  current = undefined; // from here on the tracked store answers, also for jobs this one runs at once
  try {
    return instrument === undefined
      ? tracked.run(call, invoke, call.job)
      : tracked.run(call, instrumented, call);
  } finally {
    current = previous;
  }
}

function instrumented(call: Call): unknown {
  return (instrument as Instrument).run(call.job, call.ctx, () => invoke(call.job));
}

/**
 * Up to three arguments passed as such: a spread call goes through a generic builtin (~130 instructions per
 * job). Called as a method of the job, as it always was.
 */
function invoke(job: Job): unknown {
  const args = job.args;
  switch (args.length) {
    case 0:
      return job.fn();
    case 1:
      return job.fn(args[0]);
    case 2:
      return job.fn(args[0], args[1]);
    case 3:
      return job.fn(args[0], args[1], args[2]);
    default:
      return job.fn(...args);
  }
}
