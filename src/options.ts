import { debuglog } from 'node:util';
import type { Context } from 'koa';
import { describe, type RaincheckJobError } from './errors.js';
import { type Job, ROLLED_BACK } from './job.js';
import { checkTtl } from './scheduled.js';
import { typeName } from './type-name.js';

// Where the adapters (and older imports) find it.
export { typeName } from './type-name.js';

/** How a request ended, as `runWhen` and `onDrop` see it. */
export interface ResponseOutcome {
  /** The status code of the response (`res.statusCode`) once it was over. */
  readonly status: number;
  /** `true` when the middleware downstream of `raincheck()` threw or rejected. */
  readonly threw: boolean;
  /** What it threw, when `threw` is `true`. */
  readonly error: unknown;
  /**
   * `true` when the connection closed before the whole response had been handed to the socket: a client
   * that went away, an HTTP/2 stream reset.
   */
  readonly aborted: boolean;
}

export interface RaincheckOptions {
  /**
   * Identical calls in one request (the same function, equal arguments) run once. The first call keeps its
   * place in the order; later ones return a `Scheduled` with `deduped: true`. `false` turns off only this
   * collapse, made as calls are scheduled: every call makes a job of its own. Coalescing, when asked
   * (`coalesce`, `.coalesce()`), is the stronger ask and still applies as jobs are released: an identical
   * job, of the same request too, joins one that waits for a slot or runs (or succeeded within its ttl).
   * @default true
   */
  readonly dedupe?: boolean | undefined;

  /**
   * `true`: after the response, start every job of the request at once, each on its own.
   * `false`: run them one after another in the order scheduled, each awaited before the next.
   * Either way they run after the response and never hold up the connection.
   * @default true
   */
  readonly runAsync?: boolean | undefined;

  /**
   * Run each job the moment `ctx.raincheck()` is called, before the response, whatever the request's
   * outcome. For debugging and tests, like dj-raincheck's `RAINCHECK_IMMEDIATE`. Dedupe still applies.
   * @default false
   */
  readonly immediate?: boolean | undefined;

  /**
   * Run each job in the async context of the call that scheduled it, as a timer made there would run: every
   * `AsyncLocalStorage` store visible at `ctx.raincheck()` (a request id, a logger, the active OpenTelemetry
   * span) is visible in the job, after its `await`s too. `false`: jobs run in the context the response ended
   * in, which has Koa's own store but not narrower ones; saves about 0.2 µs per job (see
   * docs/performance.md), for apps that use no `AsyncLocalStorage`.
   * @default true
   */
  readonly keepContext?: boolean | undefined;

  /**
   * Make `jobSignal()` and `jobReporter()` work anywhere inside this middleware's jobs (after `await`s, in
   * callbacks), not only at a job's top. Costs an `AsyncLocalStorage` entry per job, and on Node 20 and 22
   * turns on async_hooks for every promise of the process (see docs/performance.md).
   * @default false
   */
  readonly trackJobs?: boolean | undefined;

  /**
   * Let every job of this middleware coalesce with identical jobs of other requests, as
   * `ctx.raincheck(...).coalesce()` does for one job: `true`, or `{ ttl }` (ms, at most 2147483647,
   * setTimeout's bound, about 24.8 days) to also join an identical job that succeeded less than `ttl` ms
   * before. With `dedupe: false`, identical jobs of one request coalesce with each other too.
   * @default false
   * @throws {TypeError} (from `raincheck()`) when `ttl` is not a positive number up to 2147483647.
   */
  readonly coalesce?: boolean | { readonly ttl?: number | undefined } | undefined;

  /**
   * Capture where each job is scheduled (the stack of its `ctx.raincheck()` or `schedule()` call), so that
   * a failure's report says it: the `RaincheckJobError`'s stack gets a `scheduled at:` section with the
   * caller's frames (koa-raincheck's own left out), and `job.scheduledAt` has them. Costs a stack capture
   * per job (formatted only when read), more than the rest of a request with one job: a debugging aid (see
   * docs/performance.md). Off, nothing is captured. On by default under `NODE_DEBUG=koa-raincheck`.
   * @default false, or `true` when `NODE_DEBUG` names `koa-raincheck`
   */
  readonly callSite?: boolean | undefined;

  /**
   * How many jobs of this middleware run at once, across all its requests. Jobs over the limit wait for a
   * free slot, first come first served. A bound by default: a burst of requests must not start a burst of
   * thousands of concurrent jobs (dj-raincheck starts a thread per job); 100 is far above what I/O-bound
   * jobs of a normal load need. `Infinity` for no bound.
   * @default 100
   */
  readonly concurrency?: number | undefined;

  /**
   * How many jobs may wait for a free slot. A job over it is not run, and is reported to `onError` as a
   * `RaincheckOverflowError` (and counted as dropped). `Infinity`: none is ever turned away.
   * @default Infinity
   */
  readonly maxWaiting?: number | undefined;

  /**
   * How long, in ms, a job may run before it is reported to `onError` as a `RaincheckTimeoutError`, its
   * `jobSignal()` aborted, and it no longer holds up `drain()` or a concurrency slot. A job can set its own
   * with `ctx.raincheck(...).timeout(ms)`. `Infinity`: no timeout.
   * @default Infinity
   */
  readonly timeout?: number | undefined;

  /**
   * Decides, once the response is over, whether the request's jobs run. Jobs scheduled with `.always()` run
   * whatever it says; the others are dropped and reported to `onDrop`.
   * @default ({ threw, status }) => !threw && status < 400
   */
  readonly runWhen?: ((outcome: ResponseOutcome) => boolean) | undefined;

  /**
   * Receives every job failure, as a `RaincheckJobError` (a real `Error` naming the job, with what the job
   * threw as its `cause`). If it throws, that is contained and emitted as a process warning.
   * @default (error, job, ctx) => ctx.app.emit('error', error, ctx)
   */
  readonly onError?: ((error: RaincheckJobError, job: Job, ctx: Context) => unknown) | undefined;

  /**
   * Receives every job that is not run because `runWhen` said no (`reason` `'runWhen'`), because every
   * call that wanted it was taken back with `cancel()` (`'cancelled'`), or because every such call was made
   * inside a transaction that rolled back (`'rolledBack'`, see `atomic()`), once its response is over.
   * @default a line under `NODE_DEBUG=koa-raincheck`
   */
  readonly onDrop?:
    | ((job: Job, outcome: ResponseOutcome, ctx: Context, reason: DropReason) => unknown)
    | undefined;
}

/**
 * Why a job was dropped without running, as `onDrop` is told: `runWhen` said no, every call was taken back
 * with `cancel()`, or every call was made inside a transaction that rolled back (`atomic()`).
 */
export type DropReason = 'runWhen' | 'cancelled' | 'rolledBack';

/** The options with every default filled in. */
export type Settings = { readonly [K in keyof RaincheckOptions]-?: Exclude<RaincheckOptions[K], undefined> };

/** The default `runWhen`: a request that failed, by a throw or by its status, does not run its jobs. */
export function succeeded(outcome: ResponseOutcome): boolean {
  return !outcome.threw && outcome.status < 400;
}

/** The default `onError`: Koa's own error channel, as for errors in middleware. */
export function emitOnApp(error: RaincheckJobError, _job: Job, ctx: Context): void {
  ctx.app.emit('error', error, ctx);
}

const debug = debuglog('koa-raincheck');

/**
 * The default `onDrop`: a line under `NODE_DEBUG=koa-raincheck`. The path only, not the URL: query strings
 * carry tokens and addresses, and debug lines end up in logs.
 */
export function logDrop(job: Job, outcome: ResponseOutcome, ctx: Context, reason?: DropReason): void {
  debug('dropped job %s() of %s %s: %s', job.name, ctx.method, ctx.path, dropReason(outcome, reason));
}

/** Why a released job is not run: its flags say whether its calls were taken back, or rolled back. */
export function dropReasonOf(job: Job): DropReason {
  return (job.flags & ROLLED_BACK) !== 0 ? 'rolledBack' : job.cancelled ? 'cancelled' : 'runWhen';
}

/** Why a job of a request with this outcome is not run, in words. */
export function dropReason(outcome: ResponseOutcome, reason?: DropReason): string {
  if (reason === 'cancelled') return 'it was cancelled (scheduled.cancel())';
  if (reason === 'rolledBack') return 'its transaction rolled back';
  if (outcome.threw) return `the request failed (${describe(outcome.error)})`;
  if (outcome.status >= 400) return `the response status was ${outcome.status}`;
  return 'runWhen() returned false';
}

const defaults: Settings = {
  dedupe: true,
  runAsync: true,
  immediate: false,
  keepContext: true,
  trackJobs: false,
  coalesce: false,
  callSite: debug.enabled,
  concurrency: 100,
  maxWaiting: Number.POSITIVE_INFINITY,
  timeout: Number.POSITIVE_INFINITY,
  runWhen: succeeded,
  onError: emitOnApp,
  onDrop: logDrop,
};

const expected: { readonly [K in keyof Settings]: 'boolean' | 'function' | 'number' | 'coalesce' } = {
  dedupe: 'boolean',
  runAsync: 'boolean',
  immediate: 'boolean',
  keepContext: 'boolean',
  trackJobs: 'boolean',
  coalesce: 'coalesce',
  callSite: 'boolean',
  concurrency: 'number',
  maxWaiting: 'number',
  timeout: 'number',
  runWhen: 'function',
  onError: 'function',
  onDrop: 'function',
};

/** Fills in the defaults, throwing a `TypeError` for anything that is not an option or not of its type. */
export function resolveOptions(options: RaincheckOptions | undefined): Settings {
  if (options === undefined) return defaults;
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new TypeError(`Expected \`options\` to be an object, got \`${typeName(options)}\``);
  }
  for (const [name, value] of Object.entries(options)) {
    if (!Object.hasOwn(expected, name)) {
      throw new TypeError(
        `Unknown option \`${name}\`; expected one of ${Object.keys(expected)
          .map((known) => `\`${known}\``)
          .join(', ')}`,
      );
    }
    const type = expected[name as keyof Settings];
    if (type === 'coalesce') {
      if (typeof value !== 'boolean' && value !== undefined) {
        if (typeof value !== 'object' || value === null || Array.isArray(value)) {
          throw new TypeError(
            `Expected \`options.coalesce\` to be a boolean or an object \`{ ttl }\`, got \`${typeName(value)}\``,
          );
        }
        checkTtl(value, 'options.coalesce');
      }
      continue;
    }
    if (value !== undefined && typeof value !== type) {
      throw new TypeError(`Expected \`options.${name}\` to be a ${type}, got \`${typeName(value)}\``);
    }
    if (typeof value === 'number') checkNumber(name, value);
  }
  const settings: Record<string, unknown> = { ...defaults };
  for (const [name, value] of Object.entries(options)) if (value !== undefined) settings[name] = value;
  return settings as Settings;
}

/** The numeric options' ranges: whole numbers (or Infinity) for counts, a positive number for the timeout. */
function checkNumber(name: string, value: number): void {
  const minimum = name === 'maxWaiting' ? 0 : 1;
  const ok =
    name === 'timeout'
      ? value > 0
      : value === Number.POSITIVE_INFINITY || (Number.isInteger(value) && value >= minimum);
  if (!ok) {
    const what = name === 'timeout' ? 'a positive number of ms' : `a whole number >= ${minimum}, or Infinity`;
    throw new TypeError(`Expected \`options.${name}\` to be ${what}, got \`${value}\``);
  }
}
