import type { Context } from 'koa';
import { RequestQueue } from './request-queue.js';
import type { Runner } from './runner.js';
import type { Scheduled } from './scheduled.js';
import { typeName } from './type-name.js';

/**
 * Where a request's queue lives: `ctx[QUEUE]`. Not on `ctx.state`, which apps deep-compare and copy (deep
 * equality in node:assert, chai and lodash compares enumerable symbols, spread copies them) and template
 * engines render; and a non-enumerable property there costs a `defineProperty` per request (~150 ns).
 */
export const QUEUE: unique symbol = Symbol.for('koa-raincheck.queue');

/** The runner of the `raincheck()` middleware that owns this request. */
export const RUNNER: unique symbol = Symbol.for('koa-raincheck.runner');

/** On a `rainchecked()` wrapper: the function it wraps, which is what gets scheduled and deduped. */
export const WRAPPED: unique symbol = Symbol.for('koa-raincheck.wrapped');

/** The promise of the middleware downstream of `raincheck()`, kept until a queue needs it. */
export const DOWNSTREAM: unique symbol = Symbol.for('koa-raincheck.downstream');

/** What the middleware keeps on a request's `ctx`. */
export interface RaincheckContext extends Context {
  [QUEUE]?: RequestQueue;
  [RUNNER]?: Runner;
  [DOWNSTREAM]?: Promise<unknown>;
}

/**
 * How many transactions are open, process-wide (transaction.ts counts them), and how a call is placed in the
 * current one. Read only by `scheduleInTransactions`, the `ctx.raincheck` of a process that has used
 * transactions: one that never opens one pays nothing for them, not even a load and a comparison per call,
 * which in `scheduleOnContext` measurably pushed the queue's `add()` out of V8's inlining budget (S3 +2.2 k
 * instructions a request on Node 24).
 */
let openTransactions = 0;
let enterTransaction: ((call: Scheduled) => void) | undefined;

/** `ctx.raincheck` as the middleware installs it on each app's context: one of the two below. */
export let installed: (this: RaincheckContext, fn: unknown, ...args: unknown[]) => Scheduled =
  scheduleOnContext;

/** The app contexts `installed` was put on, to switch them to `scheduleInTransactions`. */
const contexts: WeakRef<object>[] = [];

/** @internal The middleware: puts `installed` on an app's context, on its first request. */
export function install(context: object): void {
  Object.defineProperty(context, 'raincheck', { value: installed, configurable: true, writable: true });
  contexts.push(new WeakRef(context));
}

/**
 * @internal transaction.ts: a transaction opened (`+1`) or settled (`-1`); `enter` places a call in it. The
 * first one switches every app's `ctx.raincheck` to `scheduleInTransactions`, for good.
 */
export function transactionsChanged(delta: number, enter: (call: Scheduled) => void): void {
  openTransactions += delta;
  enterTransaction = enter;
  if (installed === scheduleInTransactions) return;
  installed = scheduleInTransactions;
  for (const ref of contexts.splice(0)) {
    const context = ref.deref();
    if (context !== undefined) install(context);
  }
}

/** `ctx.raincheck(fn, ...args)`: queues `fn(...args)` to run after the response. */
export function scheduleOnContext(this: RaincheckContext, fn: unknown, ...args: unknown[]): Scheduled {
  // The errors are made by functions of their own, and the queue once per request: V8 inlines a caller's
  // callees within a budget of bytecode, and what is left out of this path keeps the rest of it inlined.
  if (this === null || typeof this !== 'object') throw notCalledOnContext(); // undefined's type is not 'object'
  if (typeof fn !== 'function') throw notAFunction(fn);
  const target = (fn as { [WRAPPED]?: unknown })[WRAPPED] ?? fn;
  const queue = this[QUEUE] ?? newQueue(this);
  return queue.add(target as (...args: readonly unknown[]) => unknown, args);
}

/** `ctx.raincheck` once the process has used transactions: a call made inside an open one belongs to it. */
function scheduleInTransactions(this: RaincheckContext, fn: unknown, ...args: unknown[]): Scheduled {
  const call = scheduleOnContext.call(this, fn, ...args);
  if (openTransactions !== 0) (enterTransaction as (call: Scheduled) => void)(call);
  return call;
}

function notCalledOnContext(): TypeError {
  return new TypeError(
    'Expected `ctx.raincheck()` to be called as a method of `ctx`, as in `ctx.raincheck(fn)`',
  );
}

function notAFunction(fn: unknown): TypeError {
  return new TypeError(`Expected \`fn\` to be a function, got \`${typeName(fn)}\``);
}

/**
 * `ctx.raincheck` of every Koa context that no `raincheck()` has served yet (see middleware.ts): a request
 * that did not pass through the middleware (mounted after the route, or not at all) gets the error that
 * names the fix, from the app's first request on, instead of "ctx.raincheck is not a function".
 */
export function scheduleUnmounted(this: RaincheckContext, fn: unknown, ...args: unknown[]): Scheduled {
  if (this === null || typeof this !== 'object') throw notCalledOnContext();
  if (this[RUNNER] === undefined) throw notMounted();
  return installed.call(this, fn, ...args);
}

function notMounted(): Error {
  return new Error(
    'ctx.raincheck() was called on a request that did not pass through the raincheck() middleware: ' +
      'app.use(raincheck()) must come before the middleware that schedules jobs',
  );
}

/** The request's queue, made on first use so that requests that schedule nothing pay nothing for it. */
function newQueue(ctx: RaincheckContext): RequestQueue {
  const runner = ctx[RUNNER];
  if (runner === undefined) throw notMounted();
  const queue = new RequestQueue(ctx, runner);
  ctx[QUEUE] = queue; // not on ctx.state: see QUEUE
  // Scheduled while the downstream was still being called synchronously, the middleware will hand the
  // queue its promise; otherwise it is here already (pending, or settled for a late first call).
  const downstream = ctx[DOWNSTREAM];
  if (downstream !== undefined) handOffWhenSettled(downstream, queue);
  return queue;
}

/**
 * The middleware's half: once the downstream has settled, the request's queue (if there is one, or when
 * one is made) starts waiting for the response to be over. Returns `downstream` for Koa.
 */
export function watchDownstream(ctx: RaincheckContext, downstream: Promise<unknown>): Promise<unknown> {
  const queue = ctx[QUEUE];
  if (queue !== undefined) handOffWhenSettled(downstream, queue);
  else ctx[DOWNSTREAM] = downstream;
  return downstream;
}

/** Koa handles the rejection of `downstream` itself; this derived promise never rejects. */
function handOffWhenSettled(downstream: Promise<unknown>, queue: RequestQueue): void {
  downstream.then(
    () => queue.handOff(false, undefined),
    (error: unknown) => queue.handOff(true, error),
  );
}
