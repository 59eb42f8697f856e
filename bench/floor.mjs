// The floor: the cheapest correct after-response middleware we can write with koa-raincheck's core
// semantics, counted beside the library by `npm run bench` so that each figure reads as "library ÷ floor"
// too. Not exported, not a product: no handles, bounds, timeouts, stats, channels, coalescing, late jobs.
//
// What it keeps of the library's contract:
// - a per-request list made on the first call only;
// - dedupe by function identity and arguments, primitives compared in place, other values by a
//   fingerprint (object-hash) made only when a candidate with the same function needs it;
// - jobs start once the downstream has settled and the response is over (closed, or over already when
//   the downstream settled), only for a request that succeeded (downstream did not throw, status < 400);
// - a job's failure, thrown or rejected, goes to `app.emit('error')`, never to the client or the process;
// - each job runs in its scheduling call's async context, through one AsyncResource (`keepContext`).
import { AsyncResource, executionAsyncId } from 'node:async_hooks';
import objectHash from 'object-hash';

const LIST = Symbol('floor.list');
const DOWNSTREAM = Symbol('floor.downstream');

// As cheap as we can write it, with the same techniques the library uses where they are cheaper: the list
// linked through its jobs (no array to grow), a 'close' listener added with on() (once() wraps it, and
// validates it through a hidden frame), and up to three arguments passed without a spread.

/** @param {{ keepContext?: boolean }} [options] */
export function floor({ keepContext = true } = {}) {
  function schedule(fn, ...args) {
    if (typeof fn !== 'function')
      throw new TypeError(`Expected \`fn\` to be a function, got \`${typeof fn}\``);
    const first = this[LIST];
    if (first === undefined) {
      this[LIST] = newJob(fn, args, keepContext);
      // The downstream is known once next() returned: a first call made later (after an await) watches it.
      const downstream = this[DOWNSTREAM];
      if (downstream !== undefined) watch(this, downstream);
      return;
    }
    let last = first;
    for (let job = first; job !== undefined; job = job.next) {
      if (isIdentical(job, fn, args)) return;
      last = job;
    }
    last.next = newJob(fn, args, keepContext);
  }

  // A request that schedules nothing pays a property write: no closure, no promise reaction.
  return function floorMiddleware(ctx, next) {
    if (ctx.raincheck !== schedule) ctx.app.context.raincheck = schedule;
    const downstream = next();
    if (ctx[LIST] !== undefined) watch(ctx, downstream);
    else ctx[DOWNSTREAM] = downstream;
    return downstream;
  };
}

function newJob(fn, args, keepContext) {
  return {
    fn,
    args,
    hash: undefined,
    // The trigger id as a number, as the library gives it: cheaper than an options object.
    scope: keepContext ? new AsyncResource('floor', executionAsyncId()) : undefined,
    next: undefined,
  };
}

/**
 * Once the downstream settled, and only if it did not throw: the jobs start when the response is over,
 * at once if it already is (a client gone before the handler ended), else on its 'close'.
 */
function watch(ctx, downstream) {
  downstream.then(() => {
    const res = ctx.res;
    if (res.writableFinished || res.destroyed) startAll(ctx);
    else res.on('close', () => startAll(ctx)); // 'close' comes once: no need for once()
  }, noop); // Koa handles the rejection; a request that threw runs nothing.
}

function startAll(ctx) {
  if (ctx.res.statusCode >= 400) return;
  for (let job = ctx[LIST]; job !== undefined; job = job.next) start(job, ctx);
}

/** schedule() without ctx, through Koa's own AsyncLocalStorage (`new Koa({ asyncLocalStorage: true })`). */
export function floorSchedule(app, fn, ...args) {
  const ctx = app.currentContext;
  if (ctx === undefined) throw new Error('floorSchedule() outside a request');
  ctx.raincheck(fn, ...args);
}

function isIdentical(job, fn, args) {
  if (job.fn !== fn || job.args.length !== args.length) return false;
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    const b = job.args[i];
    if (a === b) continue;
    if (a === null || b === null || typeof a !== 'object' || typeof b !== 'object') return false;
    job.hash ??= fingerprint(job.args);
    return job.hash !== undefined && job.hash === fingerprint(args);
  }
  return true;
}

function fingerprint(args) {
  try {
    return objectHash(args);
  } catch {
    return undefined; // not fingerprintable: not deduped
  }
}

function start(job, ctx) {
  try {
    const result = job.scope === undefined ? call.call(job) : job.scope.runInAsyncScope(call, job);
    if (typeof result?.then === 'function')
      result.then(undefined, (error) => ctx.app.emit('error', error, ctx));
  } catch (error) {
    ctx.app.emit('error', error, ctx);
  }
}

function call() {
  const args = this.args;
  switch (args.length) {
    case 0:
      return this.fn();
    case 1:
      return this.fn(args[0]);
    case 2:
      return this.fn(args[0], args[1]);
    case 3:
      return this.fn(args[0], args[1], args[2]);
    default:
      return this.fn(...args);
  }
}

function noop() {}
