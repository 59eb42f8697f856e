import { AsyncResource } from 'node:async_hooks';
// From node:perf_hooks, not the global: `globalThis.performance` is a lazy getter, run on every read.
import { performance } from 'node:perf_hooks';
import { type Asked, askedOf, fingerprintFor, type Job } from './job.js';
import { keyOf } from './key.js';
import type { Settings } from './options.js';

/**
 * The runner's side of coalescing: which jobs coalesce (those that asked, and every job with the
 * `coalesce` option), checked as each is about to run, and the index of the jobs they may join, made when
 * the first one comes.
 */
export class Coalescing {
  /** The `coalesce` option as a ttl: `undefined` when jobs coalesce only if they ask. */
  readonly ttl: number | undefined;
  #index: CoalescingIndex | undefined;

  constructor(option: Settings['coalesce']) {
    this.ttl = option === false ? undefined : option === true ? 0 : (option.ttl ?? 0);
  }

  /**
   * For a job about to run: the identical job of another request it joins instead (one that waits for a
   * slot, runs, or succeeded within its ttl), recorded as joined. Otherwise `undefined`, and a coalescing
   * job becomes the one that later identical jobs join.
   */
  joins(job: Job): Job | undefined {
    // The option, for a job that did not ask itself: applied here, not where jobs are made.
    if (this.ttl !== undefined) {
      const asked = askedOf(job);
      asked.coalesceTtl = Math.max(asked.coalesceTtl ?? 0, this.ttl);
      fingerprintFor(job); // with `dedupe: false` too
    } else if (job.asked?.coalesceTtl === undefined) {
      return undefined; // it asked something else (a timeout), not to coalesce
    }
    this.#index ??= new CoalescingIndex();
    const target = this.#index.joinOrEnter(job);
    if (target !== undefined) job.join(target);
    return target;
  }

  /** A job ended, or was dropped: if it coalesces, only one that succeeded stays joinable, for its ttl. */
  ended(job: Job): void {
    const ttl = job.asked?.coalesceTtl;
    if (ttl !== undefined) this.#index?.ended(job, ttl);
  }
}

/**
 * The jobs that identical coalescing jobs of other requests join instead of running: each one while it
 * waits for a slot or runs, and a job that succeeded for its `ttl` after that. Nothing else is kept, so
 * the index does not grow with traffic: an entry goes when its job fails or times out, when it succeeds
 * without a ttl, or once its ttl is over (when an identical job looks it up, or at the latest at the next
 * sweep: one unref'd timer for the whole index, every shortest ttl, not one per job).
 *
 * Jobs are found by function, then argument, when called with no argument or one primitive, the common
 * case (`reindex(42)`): no key string is built, nor hashed, for them. Other calls go by their dedupe key.
 * Either way two jobs meet exactly when dedupe would collapse them (see `sameFingerprint`: a Map's
 * SameValueZero is the same equality for one primitive).
 */
export class CoalescingIndex {
  /** Jobs called with no argument or one primitive: a map per function, by that argument. */
  readonly #byFunction = new WeakMap<object, Map<unknown, Entry>>();
  /** The other jobs, by dedupe key (the function's id and the arguments' fingerprint, as a string). */
  readonly #byKey = new Map<unknown, Entry>();
  /** The maps that hold jobs within their ttl: what the sweep looks through. */
  readonly #expiring = new Set<Map<unknown, Entry>>();
  #sweeper: NodeJS.Timeout | undefined;
  #sweepEvery = Number.POSITIVE_INFINITY;

  /**
   * The job `job` should join, if there is one; otherwise `job` becomes the one that later identical jobs
   * join, and `undefined` is returned. A job without a fingerprint (arguments that cannot be fingerprinted)
   * never coalesces. `job` has its `asked` record (it coalesces).
   */
  joinOrEnter(job: Job): Job | undefined {
    const fingerprint = job.fingerprint;
    if (fingerprint === undefined) return undefined;
    let map: Map<unknown, Entry>;
    let key: unknown;
    if (typeof fingerprint !== 'string' && fingerprint.length <= 1) {
      map = this.#byFunction.get(job.fn) ?? this.#newMap(job.fn);
      key = fingerprint.length === 0 ? NO_ARGUMENTS : fingerprint[0];
    } else {
      map = this.#byKey;
      key = keyOf(job.fn, fingerprint);
    }
    const entry = map.get(key);
    // Infinity while its job waits or runs: no clock read for that, the common case.
    if (entry !== undefined && entry.job !== job) {
      if (entry.expires === Number.POSITIVE_INFINITY || entry.expires > performance.now()) return entry.job;
    }
    map.set(key, { job, expires: Number.POSITIVE_INFINITY });
    const asked = job.asked as Asked;
    asked.coalesceIn = map;
    asked.coalesceKey = key;
    return undefined;
  }

  #newMap(fn: object): Map<unknown, Entry> {
    const map = new Map<unknown, Entry>();
    this.#byFunction.set(fn, map);
    return map;
  }

  /**
   * `job` ended, or was dropped while waiting for a slot (turned away by `maxWaiting`, or cancelled). Only
   * a job that succeeded, with a ttl, stays: for its ttl, counted from now.
   */
  ended(job: Job, ttl: number): void {
    const map = job.asked?.coalesceIn as Map<unknown, Entry> | undefined;
    if (map === undefined) return; // it never entered the index
    const key = (job.asked as Asked).coalesceKey;
    const entry = map.get(key);
    if (entry === undefined || entry.job !== job) return;
    if (job.state !== 'succeeded' || ttl === 0) {
      map.delete(key);
      return;
    }
    entry.expires = performance.now() + ttl;
    this.#expiring.add(map);
    if (ttl < this.#sweepEvery || this.#sweeper === undefined) this.#sweepAt(Math.min(ttl, this.#sweepEvery));
  }

  #sweepAt(every: number): void {
    clearInterval(this.#sweeper);
    this.#sweepEvery = every;
    // Made from the context this module was loaded in, not from the request whose job just ended: a timer
    // keeps the async context it was made in (every AsyncLocalStorage store, Koa's `ctx` among them) for
    // as long as it lives, and this one lives while any job is within its ttl.
    this.#sweeper = loadContext.runInAsyncScope(setInterval, undefined, () => this.#sweep(), every).unref();
  }

  /** Lets go of the jobs whose ttl is over; stops sweeping once none is left. */
  #sweep(): void {
    const now = performance.now();
    for (const map of this.#expiring) {
      let expiring = false;
      for (const [key, entry] of map) {
        if (entry.expires <= now) map.delete(key);
        else if (entry.expires !== Number.POSITIVE_INFINITY) expiring = true;
      }
      if (!expiring) this.#expiring.delete(map);
    }
    if (this.#expiring.size === 0) {
      clearInterval(this.#sweeper);
      this.#sweeper = undefined;
      this.#sweepEvery = Number.POSITIVE_INFINITY;
    }
  }
}

/** The async context this module was loaded in (an app's start, outside any request): see `#sweepAt`. */
const loadContext = new AsyncResource('koa-raincheck:coalescing-sweep');

/** The key of a call with no argument, in its function's map. */
const NO_ARGUMENTS = Symbol('no arguments');

interface Entry {
  readonly job: Job;
  /** `performance.now()` when a succeeded job stops absorbing; Infinity while it waits or runs. */
  expires: number;
}
