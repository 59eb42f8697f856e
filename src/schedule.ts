import type { Context } from 'koa';
import type { Scheduled } from './job.js';
import { typeName } from './options.js';
import { RequestQueue } from './request-queue.js';
import type { Runner } from './runner.js';

/**
 * Where a request's queue lives: `ctx.state[QUEUE]`. A symbol, and not enumerable, because template engines
 * hand `ctx.state` to templates and spread it into their locals.
 */
export const QUEUE: unique symbol = Symbol.for('koa-raincheck.queue');

/** The runner of the `raincheck()` middleware that owns this request. */
export const RUNNER: unique symbol = Symbol.for('koa-raincheck.runner');

/** Set when the downstream middleware settled before any job was scheduled (no queue existed yet). */
export const SETTLED: unique symbol = Symbol.for('koa-raincheck.settled');

export interface Settled {
  readonly threw: boolean;
  readonly error: unknown;
}

/** What the middleware keeps on a request's `ctx`. */
export interface RaincheckContext extends Context {
  [RUNNER]?: Runner;
  [SETTLED]?: Settled;
}

/** `ctx.raincheck(fn, ...args)`: queues `fn(...args)` to run after the response. */
export function scheduleOnContext(this: RaincheckContext, fn: unknown, ...args: unknown[]): Scheduled {
  if (this === undefined || this === null || typeof this !== 'object') {
    throw new TypeError(
      'Expected `ctx.raincheck()` to be called as a method of `ctx`, as in `ctx.raincheck(fn)`',
    );
  }
  if (typeof fn !== 'function') {
    throw new TypeError(`Expected \`fn\` to be a function, got \`${typeName(fn)}\``);
  }
  return queueOf(this).add(fn as (...args: readonly unknown[]) => unknown, args);
}

/** The request's queue, made on first use so that requests that schedule nothing pay nothing for it. */
function queueOf(ctx: RaincheckContext): RequestQueue {
  const existing = (ctx.state as Record<symbol, RequestQueue | undefined>)[QUEUE];
  if (existing !== undefined) return existing;
  const runner = ctx[RUNNER];
  if (runner === undefined) {
    throw new Error(
      'ctx.raincheck() was called on a request that did not pass through the raincheck() middleware: ' +
        'app.use(raincheck()) must come before the middleware that schedules jobs',
    );
  }
  const queue = new RequestQueue(ctx, runner);
  Object.defineProperty(ctx.state, QUEUE, { value: queue, configurable: true });
  const settled = ctx[SETTLED];
  if (settled !== undefined) queue.handOff(settled.threw, settled.error);
  return queue;
}

/** The middleware's half: the downstream has settled, so the queue, if any, starts waiting for the response. */
export function handOff(ctx: RaincheckContext, threw: boolean, error: unknown): void {
  const queue = (ctx.state as Record<symbol, RequestQueue | undefined>)[QUEUE];
  if (queue !== undefined) queue.handOff(threw, error);
  else ctx[SETTLED] = threw ? { threw, error } : SUCCEEDED;
}

const SUCCEEDED: Settled = Object.freeze({ threw: false, error: undefined });
