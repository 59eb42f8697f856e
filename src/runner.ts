import type { Context } from 'koa';
import { BusyList } from './busy.js';
import { settleCallSite } from './call-site.js';
import { Coalescing } from './coalesce.js';
import { Counts, type RaincheckStats } from './counts.js';
import { type RaincheckOverflowError, RaincheckTimeoutError } from './errors.js';
import { type DrainResult, IdleWaiters } from './idle.js';
import { InOrder } from './in-order.js';
import { instrument } from './instrument.js';
import { ALWAYS, HELD, type Job, type JobGroup, type JobReports, timeoutOf } from './job.js';
import { callJob } from './job-context.js';
import { dropReasonOf, type ResponseOutcome, type Settings } from './options.js';
import { park } from './park.js';
import { isThenable, publishEnd, publishStart, reportDrop, reportFailure, warnHookFailed } from './report.js';
import { Slots } from './slots.js';

/**
 * Starts and ends a middleware's jobs. A job is admitted as it is scheduled, released once its response is
 * over, then started in a free slot or dropped, and ended once, whatever its outcome, counted and
 * reported. The runner knows every job not yet settled, from the moment it is scheduled, so that `onIdle()`
 * and `drain()` also wait for jobs whose response is still being sent. One runner per `raincheck()`
 * middleware: nothing is shared between apps or middleware instances.
 */
export class Runner implements JobReports {
  /** The options of the middleware this runner belongs to. */
  readonly settings: Settings;
  /**
   * Calls are deduped, with no call site to capture and no job to run at once: whether a request's queue
   * may take its common path (see `RequestQueue#add`).
   */
  readonly plainCalls: boolean;
  /** `settings.keepContext`, one load nearer: read for every new job. */
  readonly keepContext: boolean;
  readonly #slots: Slots;
  readonly #counts: Counts;
  readonly #busy = new BusyList();
  readonly #idle = new IdleWaiters();
  readonly #coalescing: Coalescing;
  /** With `runAsync: false`: the chains of each request's jobs. */
  readonly #inOrder: InOrder | undefined;

  constructor(settings: Settings) {
    this.settings = settings;
    this.#slots = new Slots(settings.concurrency, settings.maxWaiting);
    this.#counts = new Counts(this.#slots);
    this.#coalescing = new Coalescing(settings.coalesce);
    this.#inOrder = settings.runAsync ? undefined : new InOrder();
    this.plainCalls = settings.dedupe && !settings.callSite && !settings.immediate;
    this.keepContext = settings.keepContext;
  }

  /** Jobs scheduled and not yet settled (awaiting their response, waiting for a slot, or running). */
  get pending(): number {
    return this.#counts.pending;
  }

  get stats(): RaincheckStats {
    return this.#counts.stats;
  }

  /** Resolves when no job is pending; at once if none is. */
  onIdle(): Promise<void> {
    if (this.#counts.pending === 0) return Promise.resolve();
    return this.#idle.wait();
  }

  /** See `IdleWaiters#drain`. */
  drain(timeout: number): Promise<DrainResult> {
    return this.#idle.drain(this.#counts.pending, this.#busy, timeout);
  }

  /** @internal For `jobReporter()`: reports an error of a job without ending it. */
  report(error: unknown, job: Job, ctx: unknown): void {
    reportFailure(this.settings, error, job, ctx as Context);
  }

  /** Lists a request (its queue) among those with jobs not yet settled, unless it is listed. */
  listBusy(group: JobGroup): void {
    if (!this.#busy.has(group)) this.#busy.add(group);
  }

  /**
   * Counts a new job as pending, awaiting its response; it must later go to `runNow()` or `release()`. Its
   * request counts it too (`group.unsettled`), and is listed (`listBusy()`).
   */
  admit(job: Job): void {
    this.#counts.scheduled++;
    if (instrument !== undefined) instrument.scheduled(job);
  }

  /** Counts a call collapsed into an earlier job. */
  countDeduped(): void {
    this.#counts.deduped++;
  }

  /** Runs a job right away (the `immediate` option), whatever the request's outcome. */
  runNow(job: Job, ctx: Context): void {
    this.#run(job, ctx);
  }

  /**
   * Hands over the jobs from `first` to `last` of a request's list, whose response is over. `now` is for
   * callers that are themselves on a tick of their own (the response's `'close'` event); otherwise jobs
   * start on the next tick, never inside the caller, so that `.always()` can still be chained after a late
   * `ctx.raincheck()`. With `runAsync: false`, returns a promise of their end, one after another (it never
   * rejects).
   */
  release(
    first: Job,
    last: Job,
    outcome: ResponseOutcome,
    ctx: Context,
    now: boolean,
  ): Promise<void> | undefined {
    const inOrder = this.#inOrder;
    if (inOrder !== undefined) {
      return Promise.resolve().then(() => {
        const run = this.#shouldRun(outcome);
        return inOrder.chain(first, last, (job) => this.#releaseInOrder(job, run, outcome, ctx));
      });
    }
    if (now) this.startEach(first, last, outcome, ctx);
    else process.nextTick(startEach, this, first, last, outcome, ctx);
    return undefined;
  }

  /** @internal Starts each job on its own; the ones `runWhen` rejects are dropped. */
  startEach(first: Job, last: Job, outcome: ResponseOutcome, ctx: Context): void {
    const run = this.#shouldRun(outcome);
    // Jobs appended meanwhile (scheduled by the ones started here) come after `last`: released on their own.
    // The body is #releaseInOrder's, written out: called, that method became the function V8 optimizes a
    // job's start and end in, and its bytecode left #settle a call of its own per job (Node 20).
    for (let job = first; ; job = job.nextInRequest as Job) {
      if (runs(job, run)) this.#run(job, ctx);
      else this.#dropUnrun(job, outcome, ctx);
      if (job === last) return;
    }
  }

  /** `startEach` for one job of a `runAsync: false` chain: whether it was run. */
  #releaseInOrder(job: Job, run: boolean, outcome: ResponseOutcome, ctx: Context): boolean {
    if (runs(job, run)) {
      this.#run(job, ctx);
      return true;
    }
    this.#dropUnrun(job, outcome, ctx);
    return false;
  }

  /** A released job that is not run: cancelled, rolled back, or `runWhen` said no; or held, not yet. */
  #dropUnrun(job: Job, outcome: ResponseOutcome, ctx: Context): void {
    if ((job.flags & HELD) === 0) {
      this.#drop(job, ctx, outcome);
      return;
    }
    // Pending still, as awaiting its response (see Counts); released on its own, under the same outcome.
    park(job, (parked) => this.release(parked, parked, outcome, ctx, false));
  }

  /**
   * A cancelled job of a request whose response is over: if it waits for a slot, it is dropped now; one
   * still to be started (released on the next tick, or later in a `runAsync: false` chain) is dropped there.
   */
  cancelWaiting(job: Job, outcome: ResponseOutcome): void {
    const ctx = this.#slots.remove(job);
    if (ctx !== undefined) this.#dropUnrun(job, outcome, ctx);
  }

  #shouldRun(outcome: ResponseOutcome): boolean {
    try {
      return this.settings.runWhen(outcome) === true;
    } catch (error) {
      // A broken predicate must not lose jobs: report it, and run them.
      warnHookFailed('runWhen', error);
      return true;
    }
  }

  /** Starts the job if a slot is free, or queues it for one (turned away past `maxWaiting`). */
  #run(job: Job, ctx: Context): void {
    if ((job.asked !== undefined || this.#coalescing.ttl !== undefined) && this.#coalesced(job, ctx)) return;
    const slots = this.#slots;
    if (slots.running < slots.concurrency) {
      this.#start(job, ctx);
      return;
    }
    const overflow = slots.wait(job, ctx);
    if (overflow !== undefined) this.#drop(job, ctx, overflow);
  }

  /** A coalescing job about to run that joins an identical one instead: it ends here, as coalesced. */
  #coalesced(job: Job, ctx: Context): boolean {
    if (this.#coalescing.joins(job) === undefined) return false;
    job.state = 'coalesced';
    this.#counts.coalesced++;
    publishEnd(job, undefined, undefined);
    if (instrument !== undefined) instrument.ended(job, ctx, undefined, undefined);
    this.#settle(job);
    return true;
  }

  /**
   * Takes a slot and calls the job. Never throws: a failure, thrown or rejected, Error or not, goes to
   * `onError`.
   */
  #start(job: Job, ctx: Context): void {
    this.#slots.running++;
    job.state = 'running';
    const startedAt = publishStart(job);
    let result: unknown;
    let thenable: boolean;
    try {
      result = callJob(job, this.settings.trackJobs);
      thenable = isThenable(result); // inside: a `then` getter may throw (a strict Proxy, say)
    } catch (error) {
      this.#finish(job, ctx, 'failed', error, startedAt, undefined);
      return;
    }
    if (thenable) this.#settleLater(job, ctx, result as PromiseLike<unknown>, startedAt);
    else this.#finish(job, ctx, 'succeeded', undefined, startedAt, undefined);
  }

  /**
   * An async job: its end, or its timeout, whichever comes first. Apart from `#start`, whose sync jobs
   * would otherwise allocate the context these closures share.
   */
  #settleLater(job: Job, ctx: Context, result: PromiseLike<unknown>, startedAt: number | undefined): void {
    const timeout = timeoutOf(job, this.settings.timeout);
    const timer =
      timeout === Number.POSITIVE_INFINITY
        ? undefined
        : setTimeout(() => {
            const error = new RaincheckTimeoutError(job, timeout);
            job.abort(error);
            this.#finish(job, ctx, 'timedOut', error, startedAt, undefined);
          }, timeout).unref();
    try {
      // Promise.resolve() also tames a thenable whose then() throws; it throws itself only for a promise
      // whose `constructor` getter does.
      Promise.resolve(result).then(
        () => this.#finish(job, ctx, 'succeeded', undefined, startedAt, timer),
        (error: unknown) => this.#finish(job, ctx, 'failed', error, startedAt, timer),
      );
    } catch (error) {
      this.#finish(job, ctx, 'failed', error, startedAt, timer);
    }
  }

  /**
   * The one place a started job ends; whichever of its end and its timeout comes second is ignored. Its
   * slot goes to the next waiting job.
   */
  #finish(
    job: Job,
    ctx: Context,
    state: 'succeeded' | 'failed' | 'timedOut',
    error: unknown,
    startedAt: number | undefined,
    timer: NodeJS.Timeout | undefined,
  ): void {
    if (job.state !== 'running') return;
    if (timer !== undefined) clearTimeout(timer);
    job.state = state;
    const slots = this.#slots;
    slots.running--;
    if (state === 'succeeded') {
      this.#counts.succeeded++;
    } else {
      if (state === 'failed') this.#counts.failed++;
      else this.#counts.timedOut++;
      reportFailure(this.settings, error, job, ctx);
    }
    if (job.asked !== undefined) this.#coalescing.ended(job);
    publishEnd(job, startedAt, error);
    if (instrument !== undefined) instrument.ended(job, ctx, error, undefined);
    this.#settle(job);
    if (slots.waiting !== 0) this.#startWaiting();
  }

  /** Gives the free slots to the waiting jobs, first come first served. */
  #startWaiting(): void {
    for (let next = this.#slots.next(); next !== undefined; next = this.#slots.next()) {
      this.#start(next.job, next.ctx);
    }
  }

  /** A job that is not run. `why`: the outcome `runWhen` said no to (or cancelled), or the overflow error. */
  #drop(job: Job, ctx: Context, why: ResponseOutcome | RaincheckOverflowError): void {
    job.state = 'dropped';
    this.#counts.dropped++;
    this.#coalescing.ended(job); // overflowed, or cancelled
    if (why instanceof Error) {
      reportFailure(this.settings, why, job, ctx);
      publishEnd(job, undefined, why);
      if (instrument !== undefined) instrument.ended(job, ctx, why, undefined);
    } else {
      reportDrop(this.settings, job, why, ctx, dropReasonOf(job));
      publishEnd(job, undefined, undefined);
      if (instrument !== undefined) instrument.ended(job, ctx, undefined, why);
    }
    this.#settle(job);
  }

  /**
   * Every job ends here, once: it lets go of its request (its group) and of the async context it was
   * scheduled in (which holds Koa's store, the request's `ctx`), and of its call site unless it failed
   * (a stack not yet formatted holds its frames' objects), so that a job kept afterwards (by the
   * coalescing index for its ttl, or by the caller's `Scheduled`) keeps nothing of the request alive.
   */
  #settle(job: Job): void {
    const group = job.group as JobGroup;
    job.group = undefined;
    job.scope = undefined;
    if (job.asked !== undefined) settleCallSite(job);
    if (--group.unsettled === 0) this.#busy.remove(group);
    if (this.#inOrder !== undefined) this.#inOrder.settled(job);
    if (this.#idle.waiters.length !== 0 && this.#counts.pending === 0) this.#idle.wake();
  }
}

/**
 * Whether a released job runs: one that always runs, or, when the request's outcome is to run its jobs
 * (`run`), one neither cancelled nor held.
 */
function runs(job: Job, run: boolean): boolean {
  const flags = job.flags;
  return flags === ALWAYS || (run && flags === 0);
}

function startEach(runner: Runner, first: Job, last: Job, outcome: ResponseOutcome, ctx: Context): void {
  runner.startEach(first, last, outcome, ctx);
}
