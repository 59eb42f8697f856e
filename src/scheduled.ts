import { askedOf, CANCELLED, fingerprintFor, type Job } from './job.js';
import { typeName } from './type-name.js';

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
   * on a job that has already started or been dropped. On a collapsed call, it makes the shared job always
   * run: what one call asks is never weakened by another.
   */
  always(): this {
    this.job.markAlways();
    return this;
  }

  /**
   * Gives this call's job its own timeout in ms, instead of the `timeout` option's. Call it right away: it
   * has no effect on a job that has already started. Identical calls that collapsed into one job each ask
   * for a timeout (the option's, unless they call this): the job gets the longest, so no call's job is
   * cut short by another call's shorter one.
   * @throws {TypeError} when `ms` is not a positive number.
   */
  timeout(ms: number): this {
    if (typeof ms !== 'number' || !(ms > 0)) {
      throw new TypeError(
        `Expected \`ms\` to be a positive number, got \`${typeof ms === 'number' ? ms : typeName(ms)}\``,
      );
    }
    if (this.job.state !== 'waiting') return this; // started: its timer runs already
    const asked = askedOf(this.job);
    if (this.deduped) {
      asked.timeouts ??= new Map();
      asked.timeouts.set(this, ms);
    } else {
      asked.timeoutMs = ms;
    }
    return this;
  }

  /**
   * Lets this job coalesce with identical jobs (same function, equal arguments) of other requests, once
   * its request's outcome is known: released while an identical coalescing job waits for a slot or runs,
   * it joins that one instead of running (state `'coalesced'`, `job.joined`). With `ttl` (ms), it also
   * joins one that succeeded less than `ttl` ms before (the ttl of the job that ran counts). A job that
   * failed or timed out absorbs nothing after it ended. Call it right away. On collapsed calls of one
   * request, any call asking makes the shared job coalesce, with the longest ttl asked; with
   * `dedupe: false`, identical calls of one request are jobs of their own, and coalesce with each other.
   * @throws {TypeError} when `options.ttl` is not a positive number of ms up to 2147483647 (setTimeout's
   * bound, about 24.8 days); the message names what was expected and what was given.
   */
  coalesce(options?: { readonly ttl?: number | undefined }): this {
    const ttl = checkTtl(options);
    const job = this.job;
    if (job.state !== 'waiting' || job.cancelled) return this; // too late, or taken back
    fingerprintFor(job);
    const asked = askedOf(job);
    asked.coalesceTtl = Math.max(asked.coalesceTtl ?? 0, ttl);
    return this;
  }

  /**
   * Takes this call back (Laravel's `defer()` can forget a callback too). A job not yet started is then not
   * run: it is counted as dropped and reported to `onDrop` with the reason `'cancelled'`, once its
   * response is over. Identical calls that collapsed into one job share it: the job is cancelled only
   * when every one of them has been taken back, so no caller cancels another's work.
   * @returns `true` when the job will not run; `false` when it has started or ended already (nothing
   * changes: its signal is for timeouts and drain), when this call was already taken back, or when other
   * calls still want the job (this one is withdrawn all the same).
   */
  cancel(): boolean {
    const job = this.job;
    if (job.state !== 'waiting' || job.cancelled || withdrawn.has(this)) return false;
    // With `immediate`, a job is handed to the runner at once: started, or waiting for a slot as started.
    if (job.group?.cancellable() !== true) return false;
    if (job.absorbed > 0) return false; // other requests' identical jobs joined it: their work
    withdrawn.add(this);
    if (job.collapsedCalls > 0 && ++askedOf(job).withdrawn <= job.collapsedCalls) return false; // of 1 + collapsed
    job.flags |= CANCELLED;
    job.group?.cancel(job);
    return true;
  }
}

/** The longest ttl a timer can wait (setTimeout's bound): longer ones would fire at once. */
const MAX_TTL = 2 ** 31 - 1;

/** @internal `options.ttl` of `coalesce()` (or of the `coalesce` option), checked; 0 without one. */
export function checkTtl(
  options: { readonly ttl?: number | undefined } | undefined,
  name = 'options',
): number {
  if (options === undefined) return 0;
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new TypeError(`Expected \`${name}\` to be an object \`{ ttl }\`, got \`${typeName(options)}\``);
  }
  const ttl = options.ttl;
  if (ttl === undefined) return 0;
  if (typeof ttl !== 'number' || !(ttl > 0 && ttl <= MAX_TTL)) {
    const given = typeof ttl === 'number' ? ttl : typeName(ttl);
    throw new TypeError(
      `Expected \`${name}.ttl\` to be a positive number of ms up to ${MAX_TTL}, got \`${given}\``,
    );
  }
  return ttl;
}

/** The calls taken back with `cancel()`. */
const withdrawn = new WeakSet<Scheduled>();
