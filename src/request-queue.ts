import type { Context } from 'koa';
import { captureCallSite } from './call-site.js';
import { askedOf, Job, type JobGroup } from './job.js';
import {
  allPrimitives,
  type Fingerprint,
  fingerprintOf,
  keyOf,
  sameFingerprint,
  samePrimitives,
} from './key.js';
import type { ResponseOutcome } from './options.js';
import { onResponseEnd, wasAborted } from './response-end.js';
import type { Runner } from './runner.js';
import { Scheduled } from './scheduled.js';

/** How many deduped jobs a request may have before they are looked up by key instead of one by one. */
const INDEX_AFTER = 16;

/**
 * One request's jobs: collected in order while the request is handled, collapsed by dedupe key, and
 * released to the runner once the response is over. Jobs scheduled after that (from a timer, from inside a
 * job) are released at once, under the same outcome, so none is dropped for being late.
 */
export class RequestQueue implements JobGroup {
  // For the runner (see JobGroup), `declare`d and set in the constructor like Job's.
  declare unsettled: number;
  declare previousBusy: JobGroup | undefined;
  declare nextBusy: JobGroup | undefined;
  readonly #runner: Runner;
  /**
   * The request's jobs in order, a list linked through the jobs (`nextInRequest`): most requests have one
   * job, and a list needs no array for it. Deduped jobs stay in it for the request's whole life, so that
   * identical calls collapse even after the first one ran; a late job that is not deduped is not kept.
   */
  #first: Job | undefined;
  #last: Job | undefined;
  /**
   * Late jobs that are not deduped, kept apart from the list and only until they settle (for `drain()`):
   * a long-lived request (server-sent events) may schedule any number of them. Linked the same way.
   */
  #loose: Job | undefined;
  /** Past INDEX_AFTER deduped jobs, they are looked up by key instead of one by one. */
  #dedupedCount = 0;
  /**
   * Below how many deduped jobs `add()` may take its common path: INDEX_AFTER while the request is handled,
   * if its runner's calls are plain; 0 otherwise. One comparison on the hot path for the three conditions.
   */
  #plainBelow: number;
  #byKey: Map<string, Job> | undefined;
  #outcome: ResponseOutcome | undefined;
  /** With `runAsync: false`, the end of the chain that late jobs are appended to. */
  #inOrder: Promise<void> | undefined;

  /** The request's `ctx`: what its jobs' reports and `onDrop` are given. */
  declare readonly ctx: Context;

  constructor(ctx: Context, runner: Runner) {
    this.unsettled = 0;
    this.previousBusy = undefined;
    this.nextBusy = undefined;
    this.ctx = ctx;
    this.#runner = runner;
    this.#plainBelow = runner.plainCalls ? INDEX_AFTER : 0;
    runner.listBusy(this); // made for its first job
  }

  report(error: unknown, job: Job): void {
    this.#runner.report(error, job, this.ctx);
  }

  /**
   * `ctx.raincheck()`. The common case on a path of its own: a deduped call whose arguments are all
   * primitives, made while the request is handled (no `callSite`, no `immediate`, fewer than INDEX_AFTER
   * deduped jobs), which looks for an identical job and otherwise makes one to wait with the others for the
   * response. Such arguments are their own fingerprint. Everything else in `#addOther`, which does the same
   * in general.
   */
  add(fn: (...args: readonly unknown[]) => unknown, args: readonly unknown[]): Scheduled {
    if (this.#dedupedCount >= this.#plainBelow || !allPrimitives(args)) return this.#addOther(fn, args);
    const runner = this.#runner;
    for (let job = this.#first; job !== undefined; job = job.nextInRequest) {
      if (job.fn === fn && samePrimitives(job.fingerprint, args)) return this.#collapse(job);
    }
    this.#dedupedCount++;
    const job = new Job(fn, args, args, runner.keepContext, this);
    this.unsettled++; // listed as busy since its first job: nothing settles before the response is over
    runner.admit(job);
    // #append(), written out: called here, it costs S3 0.9 k instructions a request on Node 24 (V8 then
    // inlines less of this path into the handler).
    const last = this.#last;
    if (last === undefined) this.#first = job;
    else last.nextInRequest = job;
    this.#last = job;
    return new Scheduled(job, false);
  }

  /** A call collapsed into `earlier`, an identical job of the request. */
  #collapse(earlier: Job): Scheduled {
    earlier.collapsedCalls++;
    this.#runner.countDeduped();
    return new Scheduled(earlier, true);
  }

  /** `add()` in general: with or without dedupe and call sites, before or after the response, or at once. */
  #addOther(fn: (...args: readonly unknown[]) => unknown, args: readonly unknown[]): Scheduled {
    const runner = this.#runner;
    const fingerprint = runner.settings.dedupe ? fingerprintOf(args) : undefined;
    if (fingerprint !== undefined && this.#dedupedCount > 0) {
      const earlier = this.#find(fn, fingerprint);
      if (earlier !== undefined) return this.#collapse(earlier);
    }
    const job = new Job(fn, args, fingerprint, runner.keepContext, this);
    if (runner.settings.callSite) captureCallSite(askedOf(job));
    // A late job may find the request's earlier jobs all settled, and the request no longer listed.
    if (this.unsettled++ === 0) runner.listBusy(this);
    runner.admit(job);
    if (this.#outcome === undefined && !runner.settings.immediate) {
      // Scheduled while the request is handled: the job waits for the response with the others.
      if (fingerprint !== undefined) this.#remember(job);
      this.#append(job);
    } else {
      this.#addLateOrImmediate(job);
    }
    return new Scheduled(job, false);
  }

  /** A job scheduled after the response (released at once) or with `immediate` (run at once). */
  #addLateOrImmediate(job: Job): void {
    const outcome = this.#outcome;
    if (job.fingerprint !== undefined) this.#remember(job);
    if (job.fingerprint !== undefined || outcome === undefined) this.#append(job);
    else this.#keepLoose(job);
    if (this.#runner.settings.immediate) this.#runner.runNow(job, this.ctx);
    else this.#release(job, job, outcome as ResponseOutcome, false);
  }

  /** Called once the downstream middleware has settled: from here on, wait for the response to be over. */
  handOff(threw: boolean, error: unknown): void {
    if (this.#runner.settings.immediate) return;
    onResponseEnd(this.ctx.res, () => this.#responseOver(threw, error));
  }

  #responseOver(threw: boolean, error: unknown): void {
    const { res } = this.ctx;
    const outcome: ResponseOutcome = {
      status: res.statusCode,
      threw,
      error,
      aborted: wasAborted(res),
    };
    // Until now every job of the list was waiting for this; from here on add() releases each job itself.
    this.#outcome = outcome;
    this.#plainBelow = 0;
    const first = this.#first;
    if (first !== undefined) this.#release(first, this.#last as Job, outcome, true);
  }

  cancellable(): boolean {
    return !this.#runner.settings.immediate;
  }

  cancel(job: Job): void {
    // A cancelled job takes no more identical calls: the next one makes a job of its own. (Its fingerprint
    // goes, rather than every lookup testing for cancelled jobs: #find is on the hot path. Its key, read
    // first, stays: job.key keeps answering.)
    const key = job.key;
    if (key !== undefined && this.#byKey?.get(key) === job) this.#byKey.delete(key);
    (job as { fingerprint: Fingerprint | undefined }).fingerprint = undefined;
    // Before the response is over, the release drops it with the others' outcome.
    if (this.#outcome !== undefined) this.#runner.cancelWaiting(job, this.#outcome);
  }

  collectUnsettled(into: Job[]): void {
    for (let job = this.#first; job !== undefined; job = job.nextInRequest)
      if (isUnsettled(job)) into.push(job);
    for (let job = this.#loose; job !== undefined; job = job.nextInRequest)
      if (isUnsettled(job)) into.push(job);
  }

  /** Appends a loose job to its list, leaving out the ones settled meanwhile. */
  #keepLoose(job: Job): void {
    let first: Job | undefined;
    let last: Job | undefined;
    for (let kept = this.#loose; kept !== undefined; kept = kept.nextInRequest) {
      if (!isUnsettled(kept)) continue;
      if (last === undefined) first = kept;
      else last.nextInRequest = kept;
      last = kept;
    }
    if (last === undefined) first = job;
    else last.nextInRequest = job;
    job.nextInRequest = undefined;
    this.#loose = first;
  }

  #append(job: Job): void {
    if (this.#last === undefined) this.#first = job;
    else this.#last.nextInRequest = job;
    this.#last = job;
  }

  #find(fn: object, fingerprint: Fingerprint): Job | undefined {
    if (this.#byKey !== undefined) return this.#findByKey(fn, fingerprint);
    for (let job = this.#first; job !== undefined; job = job.nextInRequest) {
      if (job.fn === fn && job.fingerprint !== undefined && sameFingerprint(job.fingerprint, fingerprint)) {
        return job;
      }
    }
    return undefined;
  }

  #findByKey(fn: object, fingerprint: Fingerprint): Job | undefined {
    return (this.#byKey as Map<string, Job>).get(keyOf(fn, fingerprint));
  }

  #remember(job: Job): void {
    if (++this.#dedupedCount > INDEX_AFTER) this.#index(job);
  }

  /** Past INDEX_AFTER deduped jobs: the index by key, made from the list the first time. */
  #index(job: Job): void {
    if (this.#byKey !== undefined) {
      this.#byKey.set(job.key as string, job);
    } else {
      this.#byKey = new Map();
      for (let keyed = this.#first; keyed !== undefined; keyed = keyed.nextInRequest) {
        if (keyed.fingerprint !== undefined) this.#byKey.set(keyed.key as string, keyed);
      }
      this.#byKey.set(job.key as string, job);
    }
  }

  /**
   * Hands the jobs from `first` to `last` in the list to the runner. `now`: the caller is on a tick of its
   * own (the response's `'close'`, or the downstream's settling), so jobs may start inside it.
   */
  #release(first: Job, last: Job, outcome: ResponseOutcome, now: boolean): void {
    const previous = this.#inOrder;
    const runner = this.#runner;
    if (previous === undefined) this.#inOrder = runner.release(first, last, outcome, this.ctx, now);
    else this.#inOrder = previous.then(() => runner.release(first, last, outcome, this.ctx, now));
  }
}

function isUnsettled(job: Job): boolean {
  return job.state === 'waiting' || job.state === 'running';
}
