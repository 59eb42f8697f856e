import type { AsyncLocalStorage } from 'node:async_hooks';
import type Koa from 'koa';
import { RaincheckOutsideRequestError } from './errors.js';
import { instrument } from './instrument.js';
import { Job } from './job.js';
import { callJob } from './job-context.js';
import { isThenable, warnJobFailed } from './report.js';
import { type RaincheckContext, RUNNER, WRAPPED } from './schedule.js';
import { Scheduled } from './scheduled.js';
import { typeName } from './type-name.js';

/**
 * What scheduling without `ctx` does outside any request handled by `raincheck()` (a script, a worker, a
 * test without the middleware): `'throw'` an `Error` that says so (the default, as Next.js's `after()`
 * does), or `'run'` the function at once (as django-post-request-task does). Never a global queue that
 * would run the job at the end of some other request.
 *
 * Once `raincheck()` has served an app of a Koa older than 2.14 (no `asyncLocalStorage` option), scheduling
 * without `ctx` that finds no request throws in the process whatever this says: a request of that app cannot
 * be told from no request, and `'run'` would run its job at once, before its response.
 */
export type OutsideRequest = 'throw' | 'run';

/** A function that can also be scheduled after the current request's response: see `rainchecked()`. */
// biome-ignore lint/suspicious/noExplicitAny: `any[]`, not `never[]`: an unannotated callback's parameters are then `any`, not `never`
export type Rainchecked<F extends (...args: any[]) => unknown> = F & {
  /**
   * Schedules a call of the function after the current request's response, as `ctx.raincheck(fn, ...args)`
   * would: same dedupe, failure and ordering rules. Outside a request: see the `outside` option.
   */
  schedule(...args: Parameters<F>): Scheduled;
};

export interface RaincheckedOptions {
  /**
   * Outside any request handled by `raincheck()`: throw, or run the function at once (never once
   * `raincheck()` has served an app of a Koa older than 2.14: see `OutsideRequest`).
   * @default the process-wide default, `'throw'` unless `setOutsideRequest()` changed it
   */
  readonly outside?: OutsideRequest | undefined;
}

/**
 * Wraps `fn`, in the spirit of dj-raincheck's `@raincheck` decorator: calling the result still calls `fn`;
 * `.schedule(...args)` queues the call on the current request, found through Koa's own
 * `AsyncLocalStorage` (`new Koa({ asyncLocalStorage: true })`, Koa 2.14 or later), so service code needs
 * no `ctx`. `.schedule()` throws a `RaincheckOutsideRequestError` when it finds no request and `outside`
 * is `'throw'`, or, whatever `outside` is, once `raincheck()` has served an app of a Koa older than 2.14.
 * @throws {TypeError} when `fn` is not a function or `options.outside` is neither `'throw'` nor `'run'`.
 */
// biome-ignore lint/suspicious/noExplicitAny: as for Rainchecked
export function rainchecked<F extends (...args: any[]) => unknown>(
  fn: F,
  options?: RaincheckedOptions,
): Rainchecked<F> {
  if (typeof fn !== 'function')
    throw new TypeError(`Expected \`fn\` to be a function, got \`${typeName(fn)}\``);
  const outside = options?.outside;
  if (outside !== undefined) checkOutside(outside, 'options.outside');
  const wrapper = function (this: unknown, ...args: Parameters<F>) {
    return fn.apply(this, args);
  } as Rainchecked<F>;
  Object.defineProperty(wrapper, 'name', { value: fn.name });
  Object.defineProperty(wrapper, WRAPPED, { value: fn }); // so ctx.raincheck(wrapper) dedupes with .schedule()
  wrapper.schedule = (...args: Parameters<F>) =>
    scheduleAmbient(fn as unknown as (...args: unknown[]) => unknown, args, outside ?? defaultOutside);
  return wrapper;
}

/**
 * Schedules `fn(...args)` after the current request's response without `ctx`, for functions you do not
 * own; the same as `ctx.raincheck(fn, ...args)` on the request found through Koa's `AsyncLocalStorage`.
 * Outside a request it follows the process-wide default (see `setOutsideRequest()`).
 * @throws {TypeError} when `fn` is not a function.
 * @throws {RaincheckOutsideRequestError} when no request is found and the default is `'throw'`, or, whatever
 * the default, once `raincheck()` has served an app of a Koa older than 2.14, whose requests cannot be found.
 */
export function schedule<Args extends unknown[]>(
  fn: (...args: Args) => unknown,
  ...args: NoInfer<Args>
): Scheduled {
  if (typeof fn !== 'function')
    throw new TypeError(`Expected \`fn\` to be a function, got \`${typeName(fn)}\``);
  return scheduleAmbient(fn as (...args: unknown[]) => unknown, args, defaultOutside);
}

let defaultOutside: OutsideRequest = 'throw';

/**
 * Sets what `schedule()` and the wrappers without an `outside` option of their own do outside a request:
 * `'throw'` (the default) or `'run'` at once. For scripts and workers that share service code with the app.
 * Once `raincheck()` has served an app of a Koa older than 2.14, such calls throw whatever this is set to.
 */
export function setOutsideRequest(behaviour: OutsideRequest): void {
  checkOutside(behaviour, 'behaviour');
  defaultOutside = behaviour;
}

function scheduleAmbient(
  fn: (...args: unknown[]) => unknown,
  args: unknown[],
  outside: OutsideRequest,
): Scheduled {
  const ctx = currentContext();
  if (ctx !== undefined) return ctx.raincheck(fn, ...args);
  if (shared[KOA_BEFORE_2_14] === true) throw new RaincheckOutsideRequestError(fn, 'koa-before-2.14');
  if (outside === 'throw') throw new RaincheckOutsideRequestError(fn);
  return runAtOnce(fn, args);
}

/** Outside a request with `'run'`: no response to wait for, no app to report to but the process. */
function runAtOnce(fn: (...args: unknown[]) => unknown, args: unknown[]): Scheduled {
  const job = new Job(fn, args, undefined, false, undefined); // run here and now: already in its context
  instrument?.scheduled(job);
  job.state = 'running';
  const end = (state: 'succeeded' | 'failed', error: unknown) => {
    job.state = state;
    if (state === 'failed') warnJobFailed(job, error);
    instrument?.ended(job, undefined, error, undefined);
  };
  let ended = false;
  try {
    const result = callJob(job);
    if (isThenable(result)) {
      Promise.resolve(result).then(
        () => end('succeeded', undefined),
        (error: unknown) => end('failed', error),
      );
    } else {
      ended = true;
      end('succeeded', undefined);
    }
  } catch (error) {
    if (!ended) end('failed', error); // also a `then` getter or promise `constructor` that throws
  }
  return new Scheduled(job, false);
}

/**
 * The context storages of the Koa apps `raincheck()` has served, kept on `globalThis` under a registered
 * symbol so that two copies of this package in one `node_modules` tree share them instead of each seeing
 * half. Koa's own storage is used: no second `AsyncLocalStorage` layer, and nothing for apps that do not
 * enable it.
 */
const STORAGES = Symbol.for('koa-raincheck.storages');
/** Shared likewise: `true` once `raincheck()` has served an app of a Koa older than 2.14. */
const KOA_BEFORE_2_14 = Symbol.for('koa-raincheck.koa-before-2.14');
const shared = globalThis as {
  [STORAGES]?: Set<AsyncLocalStorage<unknown>>;
  [KOA_BEFORE_2_14]?: boolean;
};
shared[STORAGES] ??= new Set();
const storages = shared[STORAGES];

/**
 * Called once per app by the middleware: remembers the app's context storage, if it has one, or that the
 * app's Koa is older than 2.14. Such a Koa has neither `app.currentContext` nor a storage (it ignores the
 * `asyncLocalStorage` option): its requests cannot be found, nor told from no request.
 */
export function rememberApp(app: Koa): void {
  if (!('currentContext' in app)) {
    shared[KOA_BEFORE_2_14] = true;
    return;
  }
  const storage = (app as { ctxStorage?: AsyncLocalStorage<unknown> | null }).ctxStorage;
  if (storage) storages.add(storage);
}

/** The context of the request being handled, if it went through `raincheck()`. */
function currentContext(): RaincheckContext | undefined {
  for (const storage of storages) {
    const ctx = storage.getStore() as RaincheckContext | undefined;
    if (ctx?.[RUNNER] !== undefined) return ctx;
  }
  return undefined;
}

function checkOutside(value: unknown, name: string): void {
  if (value !== 'throw' && value !== 'run') {
    const given = typeof value === 'string' ? `'${value}'` : typeName(value);
    throw new TypeError(`Expected \`${name}\` to be 'throw' or 'run', got \`${given}\``);
  }
}
