import { AsyncResource } from 'node:async_hooks';
import { type Fingerprint, keyOf } from './key.js';
import { typeName } from './type-name.js';

/** Where a job is in its life. Every job ends in exactly one of the last four. */
export type JobState = 'waiting' | 'running' | 'succeeded' | 'failed' | 'timedOut' | 'dropped';

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
  /** @internal The per-call timeout in ms, if `.timeout()` set one. */
  declare timeoutMs: number | undefined;
  /**
   * @internal What the job is counted with until it settles (its request's queue), for `drain()`; cleared
   * then, so that a settled job keeps nothing of its request alive.
   */
  declare group: JobGroup | undefined;
  /** @internal The next job of the same request (its queue's list). */
  declare nextInRequest: Job | undefined;
  /** Whether the job runs even when the request failed (see `Scheduled#always()`). */
  declare readonly runsAlways: boolean;
  /** How many later identical calls collapsed into this job (each got a `Scheduled` with `deduped: true`). */
  declare collapsedCalls: number;
  /**
   * @internal The async context of the call that scheduled the job, which the job runs in, as a timer made
   * there would: every AsyncLocalStorage store visible at that call is visible in the job. `undefined` with
   * `keepContext: false`.
   */
  declare readonly scope: AsyncResource | undefined;

  constructor(
    fn: (...args: Args) => unknown,
    args: Args,
    fingerprint: Fingerprint | undefined,
    keepContext: boolean,
  ) {
    this.fn = fn;
    this.args = args;
    this.fingerprint = fingerprint;
    this.state = 'waiting';
    this.timeoutMs = undefined;
    this.group = undefined;
    this.nextInRequest = undefined;
    this.runsAlways = false;
    this.collapsedCalls = 0;
    // An AsyncResource, not AsyncLocalStorage.snapshot(): a few dozen ns against µs. No destroy hook to
    // register: nothing here needs one.
    this.scope = keepContext ? new AsyncResource('koa-raincheck', MANUAL_DESTROY) : undefined;
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
    if (this.fingerprint === undefined) return undefined;
    let key = keys.get(this);
    if (key === undefined) {
      key = keyOf(this.fn, this.fingerprint);
      keys.set(this, key);
    }
    return key;
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

  /** @internal */
  markAlways(): void {
    (this as { runsAlways: boolean }).runsAlways = true;
  }

  /** @internal Aborts the signal, now if it was made, or as it is made. The first reason stays. */
  abort(reason: unknown): void {
    const aborted = aborts.get(this);
    if (aborted instanceof AbortController)
      aborted.abort(reason); // a second abort() is ignored
    else if (aborted === undefined) aborts.set(this, { reason });
  }
}

const MANUAL_DESTROY = { requireManualDestroy: true } as const;

/** The dedupe keys read so far (`Job#key`), made once per job. */
const keys = new WeakMap<object, string>();
/** Each job's signal, once read, or the reason it was aborted with before it was. */
const aborts = new WeakMap<object, AbortController | { readonly reason: unknown }>();

/** What `ctx.raincheck(fn, ...args)` returns. */
export class Scheduled {
  // `declare`d and set in the constructor: see Job.
  /** The job this call is part of: a new one, or the earlier identical one it collapsed into. */
  declare readonly job: Job;
  /** `true` when this call collapsed into an identical call made earlier in the same request. */
  declare readonly deduped: boolean;

  constructor(job: Job, deduped: boolean) {
    this.job = job;
    this.deduped = deduped;
  }

  /**
   * Runs the job even when the request fails (Laravel's `->always()`). Call it right away: it has no effect
   * on a job that has already started or been dropped.
   */
  always(): this {
    this.job.markAlways();
    return this;
  }

  /**
   * Gives this job its own timeout in ms, instead of the `timeout` option's. Call it right away: it has no
   * effect on a job that has already started.
   * @throws {TypeError} when `ms` is not a positive number.
   */
  timeout(ms: number): this {
    if (typeof ms !== 'number' || !(ms > 0)) {
      throw new TypeError(
        `Expected \`ms\` to be a positive number, got \`${typeof ms === 'number' ? ms : typeName(ms)}\``,
      );
    }
    this.job.timeoutMs = ms;
    return this;
  }
}

/**
 * @internal A request's jobs as the runner counts them: the runner lists the groups that have jobs not yet
 * settled, rather than every such job, so that scheduling a job writes nothing into the long-lived runner.
 */
export interface JobGroup {
  /** How many of the group's jobs are not yet settled. */
  unsettled: number;
  /** The runner's list of groups with jobs not yet settled. */
  previousBusy: JobGroup | undefined;
  nextBusy: JobGroup | undefined;
  /** Adds the group's jobs not yet settled to `into`, in the order they were scheduled. */
  collectUnsettled(into: Job[]): void;
}

/** Where a job's reports go: its middleware's `onError`, with its request's `ctx`. */
export interface JobReports {
  report(error: unknown, job: Job, ctx: unknown): void;
}
