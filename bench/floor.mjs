// The floor: the cheapest correct after-response middleware we can write with koa-raincheck's core
// semantics, counted beside the library by `npm run bench` so that each figure reads as "library ÷ floor"
// too. Not exported, not a product: no handles, bounds, timeouts, stats, channels, coalescing, late jobs.
//
// What it keeps of the library's contract:
// - a per-request list made on the first call only;
// - dedupe by function identity and arguments, primitives compared in place, other values by a
//   fingerprint (object-hash) made only when a candidate with the same function needs it;
// - jobs start once the downstream has settled and the response has closed, only for a request that
//   succeeded (downstream did not throw, status < 400);
// - a job's failure, thrown or rejected, goes to `app.emit('error')`, never to the client or the process;
// - each job runs in its scheduling call's async context, through one AsyncResource (`keepContext`).
import { AsyncResource, executionAsyncId } from 'node:async_hooks';
import objectHash from 'object-hash';

const LIST = Symbol('floor.list');
const DOWNSTREAM = Symbol('floor.downstream');

/** @param {{ keepContext?: boolean }} [options] */
export function floor({ keepContext = true } = {}) {
  function schedule(fn, ...args) {
    if (typeof fn !== 'function')
      throw new TypeError(`Expected \`fn\` to be a function, got \`${typeof fn}\``);
    let list = this[LIST];
    if (list === undefined) {
      list = [];
      this[LIST] = list;
      // The downstream is known once next() returned: a first call made later (after an await) watches it.
      const downstream = this[DOWNSTREAM];
      if (downstream !== undefined) watch(this, downstream, list);
    } else if (findIdentical(list, fn, args)) return;
    list.push({
      fn,
      args,
      hash: undefined,
      // The trigger id as a number, as the library gives it: cheaper than an options object.
      scope: keepContext ? new AsyncResource('floor', executionAsyncId()) : undefined,
    });
  }

  // A request that schedules nothing pays a property write: no closure, no promise reaction.
  return function floorMiddleware(ctx, next) {
    if (ctx.raincheck !== schedule) ctx.app.context.raincheck = schedule;
    const downstream = next();
    const list = ctx[LIST];
    if (list !== undefined) watch(ctx, downstream, list);
    else ctx[DOWNSTREAM] = downstream;
    return downstream;
  };
}

/** Once the downstream settled, and only if it did not throw: the jobs start when the response closed. */
function watch(ctx, downstream, list) {
  downstream.then(() => {
    const res = ctx.res;
    // Koa writes the response after this; 'close' comes once it is over (or the client went away).
    res.once('close', () => {
      if (res.statusCode < 400) for (const job of list) start(job, ctx);
    });
  }, noop); // Koa handles the rejection; a request that threw runs nothing.
}

/** schedule() without ctx, through Koa's own AsyncLocalStorage (`new Koa({ asyncLocalStorage: true })`). */
export function floorSchedule(app, fn, ...args) {
  const ctx = app.currentContext;
  if (ctx === undefined) throw new Error('floorSchedule() outside a request');
  ctx.raincheck(fn, ...args);
}

function findIdentical(list, fn, args) {
  for (const job of list) {
    if (job.fn !== fn || job.args.length !== args.length) continue;
    let same = true;
    for (let i = 0; i < args.length; i++) {
      const a = args[i];
      const b = job.args[i];
      if (a === b) continue;
      if (a === null || b === null || typeof a !== 'object' || typeof b !== 'object') {
        same = false;
        break;
      }
      job.hash ??= fingerprint(job.args);
      same = job.hash !== undefined && job.hash === fingerprint(args);
      break;
    }
    if (same) return true;
  }
  return false;
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
  return this.fn(...this.args);
}

function noop() {}
