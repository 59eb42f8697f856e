import { AsyncLocalStorage, executionAsyncResource } from 'node:async_hooks';
import { type Instrument, instrument } from './instrument.js';
import { JOB, type Job, type JobGroup, type JobScope, scopeOf } from './job.js';

/**
 * With `trackJobs: true`, the job being run and its request's queue (where its reports go), kept together:
 * by the time a continuation reports, a job that timed out has left its queue.
 */
interface Tracked {
  readonly job: Job;
  readonly group: JobGroup | undefined;
}

/**
 * The job whose function is being called right now, synchronously, when it runs without a scope of its own
 * (`keepContext: false`, or on a runtime where a scope does not answer for its job: see `scopeAnswers`).
 * A job run in its scope is found as the scope itself (`executionAsyncResource()`, see `runningJob()`), and
 * writes nothing here. Its reports go to its queue (`job.group`), which it is in until it settles.
 */
let current: Job | undefined;

/**
 * Whether a job's scope answers for it: `executionAsyncResource()` is the scope while the job's own code
 * runs, and not in its continuations. So on Node. Not on Bun, whose async_hooks do not report resources,
 * nor on Deno, where `executionAsyncResource()` follows the scope into the job's continuations (there
 * `jobSignal()` would answer after an `await` without `trackJobs`, unlike on Node): `current` answers there.
 * Probed once, as the module loads, over a microtask; `current` answers until the probe has.
 */
let scopeAnswers = false;
{
  const probe = scopeOf(undefined as unknown as Job);
  probe.runInAsyncScope(() => {
    if (executionAsyncResource() !== probe) return;
    void Promise.resolve().then(() => {
      scopeAnswers = executionAsyncResource() !== probe;
    });
  });
}

/**
 * With `trackJobs: true`, the job a continuation belongs to, for `jobSignal()` and `jobReporter()` after its
 * `await`s and in its callbacks. An AsyncLocalStorage of its own costs an entry per job, and on Node 20 and
 * 22 its first use slows every promise of the process (async_hooks): so it is used only when asked for.
 */
const tracked = new AsyncLocalStorage<Tracked>();

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
 * Call it at the top of the job, in its own synchronous code before its first `await` (not in a callback
 * run by another AsyncResource, which is another async context); with `raincheck({ trackJobs: true })`,
 * anywhere inside the job (after `await`s, in callbacks it makes).
 * @throws {Error} when called outside a job, or after an `await` in a job without `trackJobs`.
 */
export function jobSignal(): AbortSignal {
  const job = runningJob() ?? tracked.getStore()?.job;
  if (job === undefined) throw notInAJob('jobSignal');
  return job.signal;
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
  let job = runningJob();
  let group = job?.group;
  if (job === undefined) {
    const call = tracked.getStore();
    if (call === undefined) return undefined;
    job = call.job;
    group = call.group;
  }
  const reporting = job;
  return (error) => {
    // A job run at once outside any request has no queue, and no app to report to.
    if (group === undefined) process.emitWarning(error instanceof Error ? error : String(error));
    else group.report(error, reporting);
  };
}

/** The job being called synchronously right now: `current`, or the one whose scope this runs in. */
function runningJob(): Job | undefined {
  if (current !== undefined || !scopeAnswers) return current;
  const resource = executionAsyncResource();
  return (resource as JobScope)[JOB];
}

/**
 * @internal Calls the job's function in the async context it was scheduled in (when it was kept), as the
 * job that `jobSignal()` and `jobReporter()` answer for.
 */
export function callJob(job: Job, track?: boolean): unknown {
  // The job as `this`: runInAsyncScope forwards no argument then, which spares it a rest array and a
  // generic apply per job.
  const scope = job.scope;
  if (track === true)
    return scope === undefined ? enterTracked.call(job) : scope.runInAsyncScope(enterTracked, job);
  if (scope === undefined) return enterCurrent.call(job);
  return scope.runInAsyncScope(scopeAnswers ? enterScope : enterCurrent, job);
}

/** A job in its scope, which answers for it: nothing to write, unless a job without one is around it. */
function enterScope(this: Job): unknown {
  if (current !== undefined) return enterCurrent.call(this); // `current` must not answer in here
  return instrument === undefined ? invoke(this) : instrumented(this);
}

function enterCurrent(this: Job): unknown {
  const previous = current;
  current = this;
  try {
    return instrument === undefined ? invoke(this) : instrumented(this);
  } finally {
    current = previous;
  }
}

function enterTracked(this: Job): unknown {
  const previous = current;
  current = undefined; // from here on the tracked store answers, also for jobs this one runs at once
  try {
    const call: Tracked = { job: this, group: this.group };
    return instrument === undefined ? tracked.run(call, invoke, this) : tracked.run(call, instrumented, this);
  } finally {
    current = previous;
  }
}

function instrumented(job: Job): unknown {
  return (instrument as Instrument).run(job, job.group?.ctx, () => invoke(job));
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
