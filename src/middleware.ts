import Koa, { type Middleware } from 'koa';
import { rememberApp } from './ambient.js';
import type { RaincheckStats } from './counts.js';
import type { DrainResult } from './idle.js';
import { type RaincheckOptions, resolveOptions } from './options.js';
import { Runner } from './runner.js';
import {
  install,
  installed,
  type RaincheckContext,
  RUNNER,
  scheduleUnmounted,
  watchDownstream,
} from './schedule.js';
import { typeName } from './type-name.js';

/** The middleware `raincheck()` returns, with a way to wait for its jobs. */
export interface RaincheckMiddleware extends Middleware {
  /**
   * Resolves when every job scheduled through this middleware has settled: the ones waiting for their
   * response to be over and the ones running. For tests and graceful shutdown.
   */
  onIdle(): Promise<void>;
  /** How many jobs are scheduled and not yet settled. */
  readonly pending: number;
  /**
   * For graceful shutdown: resolves when every job that is waiting for its response, waiting for a slot or
   * running has settled, jobs scheduled meanwhile included. With `timeout` (ms), resolves then at the
   * latest, with the jobs still unfinished, whose `jobSignal()` it aborts. Never rejects.
   * @throws {TypeError} when `timeout` is not a positive number.
   */
  drain(options?: { readonly timeout?: number | undefined }): Promise<DrainResult>;
  /** A snapshot of the counts of this middleware's jobs. */
  readonly stats: RaincheckStats;
}

// Every Koa context has `ctx.raincheck` from the moment this module loads: on a request that did not pass
// through raincheck() it throws the error that names the fix. The base context object is the prototype of
// each app's `app.context`; Koa exports no other handle on it. An app of another copy of Koa (two in one
// tree) gets the method on its first request through raincheck(), as before.
Object.defineProperty(Object.getPrototypeOf(new Koa().context), 'raincheck', {
  value: scheduleUnmounted,
  configurable: true,
  writable: true,
});

/**
 * Makes `ctx.raincheck(fn, ...args)` available to the middleware after this one.
 * @throws {TypeError} when an option is unknown or of the wrong type.
 */
export function raincheck(options?: RaincheckOptions): RaincheckMiddleware {
  const runner = new Runner(resolveOptions(options));

  // Not an async function: a request that schedules nothing costs two property writes, no closure and no
  // extra promise. Koa writes the response only after the chain resolves, so nothing here waits for it.
  const middleware = function raincheck(ctx: RaincheckContext, next: () => Promise<unknown>) {
    // Mounted twice (or by two routers): the outermost one owns the request, so no job runs twice.
    if (ctx[RUNNER] !== undefined) return next();
    ctx[RUNNER] = runner;
    if (ctx.raincheck !== installed) {
      // Once per app (its own context still inherits scheduleUnmounted): ctx.raincheck on its context
      // prototype, and its context storage for schedule().
      install(ctx.app.context);
      rememberApp(ctx.app);
    }
    return watchDownstream(ctx, next());
  };

  return Object.defineProperties(middleware as unknown as RaincheckMiddleware, {
    onIdle: { value: () => runner.onIdle() },
    pending: { get: () => runner.pending },
    stats: { get: () => runner.stats },
    drain: {
      value: (options?: { readonly timeout?: number | undefined }) => {
        const timeout = options?.timeout ?? Number.POSITIVE_INFINITY;
        if (typeof timeout !== 'number' || !(timeout > 0)) {
          const given = typeof timeout === 'number' ? timeout : typeName(timeout);
          throw new TypeError(`Expected \`options.timeout\` to be a positive number, got \`${given}\``);
        }
        return runner.drain(timeout);
      },
    },
  });
}
