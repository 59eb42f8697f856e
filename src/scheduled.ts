import { type Asked, askedOf, CANCELLED, fingerprintFor, HELD, type Job, ROLLED_BACK } from './job.js';
import { unpark } from './park.js';
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
    return withdraw(this, CANCELLED);
  }
}

/**
 * Takes `call` back (`cancel()`, or its transaction's rollback): its job is dropped once every call that
 * wanted it was taken back, with `flags` (CANCELLED, or with ROLLED_BACK) saying why. Returns whether it is.
 */
function withdraw(call: Scheduled, flags: number): boolean {
  const job = call.job;
  withdrawn.add(call);
  if (heldCalls.delete(call)) (job.asked as Asked).held--;
  if (job.collapsedCalls > 0 && ++askedOf(job).withdrawn <= job.collapsedCalls) {
    if (job.asked?.held !== 0) updateHold(job); // the calls left may all be held
    return false; // of 1 + collapsed
  }
  job.flags = (job.flags | flags) & ~HELD;
  job.group?.cancel(job);
  unpark(job);
  return true;
}

/** The calls made inside a transaction that has not committed yet (see transaction.ts). */
const heldCalls = new WeakSet<Scheduled>();

/** @internal `call` was made inside an open transaction: its job waits, unless another call wants it. */
export function holdCall(call: Scheduled): void {
  if (!followsTransactions(call)) return;
  heldCalls.add(call);
  askedOf(call.job).held++;
  updateHold(call.job);
}

/** @internal `call`'s transaction committed, and so did every one around it: it wants its job like any call. */
export function keepCall(call: Scheduled): void {
  if (!heldCalls.delete(call)) return; // taken back meanwhile
  (call.job.asked as Asked).held--;
  updateHold(call.job);
}

/** @internal `call`'s transaction (or one around it) rolled back: the call is taken back. */
export function rollBackCall(call: Scheduled): void {
  if (followsTransactions(call)) withdraw(call, CANCELLED | ROLLED_BACK);
}

/**
 * Whether its transaction can still hold or drop `call`'s job: not once the job has started, nor once the
 * call was taken back, nor with `immediate`, whose jobs are handed to the runner at once (started, or
 * waiting for a slot as started) and are neither held nor dropped, as they are not cancelled.
 */
function followsTransactions(call: Scheduled): boolean {
  const job = call.job;
  return job.state === 'waiting' && !withdrawn.has(call) && job.group?.cancellable() === true;
}

/**
 * @internal Sets or clears the job's HELD flag: held while every call that still wants it is inside a
 * transaction not yet committed. A parked job (its response over) that no longer is, is released.
 */
export function updateHold(job: Job): void {
  const asked = job.asked;
  if (asked === undefined) return;
  if (asked.held > 0 && asked.held === 1 + job.collapsedCalls - asked.withdrawn) job.flags |= HELD;
  else if ((job.flags & HELD) !== 0) {
    job.flags &= ~HELD;
    unpark(job);
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
