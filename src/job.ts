import { AsyncResource, executionAsyncId } from 'node:async_hooks';
import { callSiteOf } from './call-site.js';
import { type Fingerprint, fingerprintOf, keyOf } from './key.js';

// Read once, as the module loads: the CommonJS build reads an import from the required module's object on
// every use, and on Node 24 node:async_hooks's takes a generic load (a LoadIC call, about 80 instructions)
// for each, two per job. Constants cost nothing.
const Scope = AsyncResource;
const asyncId = executionAsyncId;

/**
 * Where a job is in its life. Every job ends in exactly one of the last five; `'coalesced'`: it joined an
 * identical job of another request instead of running (see `Scheduled#coalesce()`).
 */
export type JobState = 'waiting' | 'running' | 'succeeded' | 'failed' | 'timedOut' | 'dropped' | 'coalesced';

/** One function call to make after the response: what `ctx.raincheck(fn, ...args)` queues. */
export class Job<Args extends readonly unknown[] = readonly unknown[]> {
  // A job is made on every `ctx.raincheck()`, so it holds only what every job needs, `declare`d and set in
  // the constructor: V8 defines each class field (private ones too) through an inline cache and an
  // initializer function of its own, which cost more than plain stores, and a shorter constructor is one
  // V8 inlines where jobs are made. What few jobs need (a cached key, a signal) lives in WeakMaps.
  /** The function to call. */
  declare readonly fn: (...args: Args) => unknown;
  /** The arguments to call it with. */
  declare readonly args: Args;
  /** @internal What identical calls are recognised by; `undefined` when the job is not deduped. */
  declare readonly fingerprint: Fingerprint | undefined;
  declare state: JobState;

  /**
   * @internal What the job is counted with until it settles (its request's queue), for `drain()`; cleared
   * then, so that a settled job keeps nothing of its request alive.
   */
  declare group: JobGroup | undefined;
  /** @internal The next job of the same request (its queue's list). */
  declare nextInRequest: Job | undefined;
  /** @internal `ALWAYS` and `CANCELLED`, or'ed: one field for the two, so a job costs one store less. */
  declare flags: number;
  /** How many later identical calls collapsed into this job (each got a `Scheduled` with `deduped: true`). */
  declare collapsedCalls: number;
  /**
   * @internal What the job's calls asked beyond the defaults (`.timeout()`, `.coalesce()`, `.cancel()` of
   * collapsed calls), made by the first that asks: most jobs ask nothing, and a job is one field smaller
   * for each thing kept here.
   */
  declare asked: Asked | undefined;

  /**
   * @internal The async context of the call that scheduled the job, which the job runs in, as a timer made
   * there would: every AsyncLocalStorage store visible at that call is visible in the job. `undefined` with
   * `keepContext: false`, and once the job has settled: that context holds every store of the call, Koa's
   * own (the request's `ctx`) among them, and a job that succeeded may be kept for its coalescing ttl.
   */
  declare scope: AsyncResource | undefined;

  constructor(
    fn: (...args: Args) => unknown,
    args: Args,
    fingerprint: Fingerprint | undefined,
    keepContext: boolean,
    group: JobGroup | undefined,
  ) {
    this.fn = fn;
    this.args = args;
    this.fingerprint = fingerprint;
    this.state = 'waiting';
    this.group = group;
    this.nextInRequest = undefined;
    this.flags = 0;
    this.collapsedCalls = 0;
    this.asked = undefined;
    // An AsyncResource, not AsyncLocalStorage.snapshot(): a few dozen ns against µs.
    this.scope = keepContext ? scopeOf(this as unknown as Job) : undefined;
  }

  /** The function's name, for reports. */
  get name(): string {
    try {
      const name = this.fn.name;
      return typeof name === 'string' && name !== '' ? name : 'anonymous';
    } catch {
      return 'anonymous'; // a `name` getter that throws
    }
  }

  /**
   * The dedupe key, a string equal for identical calls (the same function, equal arguments), or `undefined`
   * when the job is not deduped. Made on first read.
   */
  get key(): string | undefined {
    let key = keys.get(this); // first: a cancelled job keeps the key it had
    if (key === undefined && this.fingerprint !== undefined) {
      key = keyOf(this.fn, this.fingerprint);
      keys.set(this, key);
    }
    return key;
  }

  /** The job of another request this one joined instead of running (state `'coalesced'`), if it did. */
  get joined(): Job | undefined {
    return this.asked?.joined;
  }

  /** How many identical jobs of other requests joined this one instead of running (`coalesce()`). */
  get absorbed(): number {
    return this.asked?.absorbed ?? 0;
  }

  /**
   * Where the job was scheduled, with the `callSite` option (or `NODE_DEBUG=koa-raincheck`): the stack of
   * the `ctx.raincheck()` (or `schedule()`) call that made it, without koa-raincheck's own frames, one
   * `    at ...` line per frame, as in an `Error`'s stack. Formatted on first read. `undefined` without the
   * option, and once the job has settled unless it failed or timed out (a stack not yet formatted holds
   * its frames' objects, the request's `ctx` among them). Failure reports carry it in their stack, under
   * `scheduled at:`.
   */
  get scheduledAt(): string | undefined {
    return this.asked?.callSite === undefined ? undefined : callSiteOf(this as unknown as Job);
  }

  /** @internal Records that this job joined `target` instead of running. */
  join(target: Job): void {
    // Both coalesce, so both have their `asked` record: no WeakMap, whose entries cost the GC.
    askedOf(this as unknown as Job).joined = target;
    askedOf(target).absorbed++;
  }

  /**
   * Aborted when the job times out or `drain()` gives up on it, with a `RaincheckTimeoutError` or a
   * `RaincheckDrainTimeoutError` as its reason. Made on first read; inside the job, `jobSignal()` reads it.
   */
  get signal(): AbortSignal {
    const aborted = aborts.get(this);
    if (aborted instanceof AbortController) return aborted.signal;
    const controller = new AbortController();
    if (aborted !== undefined) controller.abort(aborted.reason);
    aborts.set(this, controller);
    return controller.signal;
  }

  /** Whether the job runs even when the request failed (see `Scheduled#always()`). */
  get runsAlways(): boolean {
    return (this.flags & ALWAYS) !== 0;
  }

  /** @internal Set by `Scheduled#cancel()` once no call wants the job any more: dropped instead of run. */
  get cancelled(): boolean {
    return (this.flags & CANCELLED) !== 0;
  }

  /**
   * Whether the job waits for a transaction (see `atomic()`): every call that wants it was made inside one
   * that has not committed yet. It starts once one of them commits, and is dropped if all roll back. Never
   * with `immediate`, whose jobs are handed over at once.
   */
  get held(): boolean {
    return (this.flags & HELD) !== 0;
  }

  /** @internal */
  markAlways(): void {
    this.flags |= ALWAYS;
  }

  /** @internal Aborts the signal, now if it was made, or as it is made. The first reason stays. */
  abort(reason: unknown): void {
    const aborted = aborts.get(this);
    if (aborted instanceof AbortController)
      aborted.abort(reason); // a second abort() is ignored
    else if (aborted === undefined) aborts.set(this, { reason });
  }
}

/** @internal Flags of `Job#flags`. */
export const ALWAYS = 1;
export const CANCELLED = 2;
/** With CANCELLED: the last call that wanted the job was dropped by its transaction's rollback. */
export const ROLLED_BACK = 4;
/** Every call still wanting the job is inside a transaction not yet committed: it must not start. */
export const HELD = 8;

/** On a job's scope (its AsyncResource): the job, which `jobSignal()` finds there. */
export const JOB: unique symbol = Symbol('koa-raincheck.job');

/**
 * The async context a job was scheduled in, which it runs in: an AsyncResource that knows its job, so that
 * `jobSignal()` inside it finds the job as `executionAsyncResource()`, and running the job writes nothing
 * into a long-lived variable (a store of a new object there costs a write barrier per job).
 */
export type JobScope = AsyncResource & { [JOB]?: Job };

/**
 * A new job's scope. A plain AsyncResource with the job under a symbol, not a subclass: on Node 20, whose
 * AsyncLocalStorage copies its store onto each new resource (an `init` hook), that copy onto instances of a
 * subclass went through V8's slow generic store, about 4 k instructions per job (S6, callgrind). The
 * trigger is the scheduling call's execution (AsyncResource's documented default), given as a number: an
 * options object costs AsyncResource property reads and a lookup of that default. Destroyed by the garbage
 * collector (async_hooks users that track resources, cls-hooked say, see it go): no destroy hook is
 * registered unless one of them is installed.
 */
export function scopeOf(job: Job): AsyncResource {
  const scope = new Scope('koa-raincheck', asyncId()) as JobScope;
  scope[JOB] = job;
  return scope;
}

/** The dedupe keys read so far (`Job#key`), made once per job. */
const keys = new WeakMap<object, string>();
/** Each job's signal, once read, or the reason it was aborted with before it was. */
const aborts = new WeakMap<object, AbortController | { readonly reason: unknown }>();

/**
 * @internal Fingerprints a job made without one (`dedupe: false`), for coalescing; arguments that cannot
 * be fingerprinted leave it without, and it never coalesces.
 */
export function fingerprintFor(job: Job): void {
  if (job.fingerprint === undefined) {
    (job as { fingerprint: Fingerprint | undefined }).fingerprint = fingerprintOf(job.args);
  }
}

/** @internal What a job's calls asked: see `Job#asked`. */
export interface Asked {
  /** The timeout the call that made the job set with `.timeout()`. */
  timeoutMs: number | undefined;
  /** The timeouts collapsed calls (their `Scheduled`) set with `.timeout()`; the others ask the option's. */
  timeouts: Map<object, number> | undefined;
  /** How many of the job's calls were taken back with `cancel()`. */
  withdrawn: number;
  /**
   * With `.coalesce()` or the `coalesce` option: how long (ms) the job, once succeeded, still absorbs
   * identical coalescing jobs (0: only while it waits or runs); `undefined`: it does not coalesce.
   */
  coalesceTtl: number | undefined;
  /**
   * Where the coalescing index keeps the job while others may join it (one of its maps), and under which
   * key: its own business (src/coalesce.ts), kept here so that a job that ends finds its entry at once.
   */
  coalesceIn: Map<unknown, unknown> | undefined;
  coalesceKey: unknown;
  /** The job it joined instead of running. */
  joined: Job | undefined;
  /** How many identical jobs of other requests joined it. */
  absorbed: number;
  /**
   * With the `callSite` option: the stack of the call that made the job, as captured (formatted on first
   * read), then as text (see src/call-site.ts).
   */
  callSite: unknown;
  /** How many of the job's calls (not taken back) are inside a transaction not yet committed. */
  held: number;
  /** A held job whose response is over: how to hand it back once no transaction holds it (src/park.ts). */
  parked: ((job: Job) => void) | undefined;
}

/** @internal */
export function askedOf(job: Job): Asked {
  job.asked ??= {
    timeoutMs: undefined,
    timeouts: undefined,
    withdrawn: 0,
    coalesceTtl: undefined,
    coalesceIn: undefined,
    coalesceKey: undefined,
    joined: undefined,
    absorbed: 0,
    callSite: undefined,
    held: 0,
    parked: undefined,
  };
  return job.asked;
}

/** @internal The timeout a job runs under: the longest any of its calls asked for (see `Scheduled#timeout()`). */
export function timeoutOf(job: Job, fallback: number): number {
  const asked = job.asked;
  if (asked === undefined) return fallback;
  let timeout = asked.timeoutMs ?? fallback;
  const timeouts = asked.timeouts;
  if (timeouts === undefined) return job.collapsedCalls > 0 ? Math.max(timeout, fallback) : timeout;
  if (job.collapsedCalls > timeouts.size) timeout = Math.max(timeout, fallback); // some asked none
  for (const ms of timeouts.values()) timeout = Math.max(timeout, ms);
  return timeout;
}

/**
 * @internal A request's jobs as the runner counts them: the runner lists the groups that have jobs not yet
 * settled, rather than every such job, so that scheduling a job writes nothing into the long-lived runner.
 */
export interface JobGroup {
  /** The request's `ctx`, for reports and tracing. */
  readonly ctx: unknown;
  /** Reports an error of one of its jobs without ending it (`jobReporter()`). */
  report(error: unknown, job: Job): void;
  /** How many of the group's jobs are not yet settled. */
  unsettled: number;
  /** The links of the list of groups with jobs not yet settled (src/busy.ts). */
  previousBusy: JobGroup | undefined;
  nextBusy: JobGroup | undefined;
  /** Adds the group's jobs not yet settled to `into`, in the order they were scheduled. */
  collectUnsettled(into: Job[]): void;
  /** Whether its jobs can still be cancelled (not with `immediate`, which hands them over at once). */
  cancellable(): boolean;
  /** A job of the group was cancelled (`job.cancelled`): drop it now if it waits for a slot. */
  cancel(job: Job): void;
}

/** Where a job's reports go: its middleware's `onError`, with its request's `ctx`. */
export interface JobReports {
  report(error: unknown, job: Job, ctx: unknown): void;
}
