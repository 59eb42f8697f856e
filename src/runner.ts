import type { Context } from 'koa';
import { settleCallSite } from './call-site.js';
import { CoalescingIndex } from './coalesce.js';
import { RaincheckDrainTimeoutError, RaincheckOverflowError, RaincheckTimeoutError } from './errors.js';
import { instrument } from './instrument.js';
import {
  ALWAYS,
  askedOf,
  fingerprintFor,
  HELD,
  type Job,
  type JobGroup,
  type JobReports,
  timeoutOf,
} from './job.js';
import { callJob } from './job-context.js';
import { dropReasonOf, type ResponseOutcome, type Settings } from './options.js';
import { isThenable, publishEnd, publishStart, reportDrop, reportFailure, warnHookFailed } from './report.js';

/** Counts of a middleware's jobs. Every scheduled job is in exactly one of the last eight. */
export interface RaincheckStats {
  /** Jobs made by `ctx.raincheck()` (calls collapsed into an earlier one are not jobs). */
  readonly scheduled: number;
  /** Calls collapsed into an identical earlier call of the same request. */
  readonly deduped: number;
  /** Jobs waiting for their response to be over. */
  readonly awaitingResponse: number;
  /** Jobs waiting for a free slot (`concurrency`). */
  readonly waiting: number;
  readonly running: number;
  readonly succeeded: number;
  readonly failed: number;
  readonly timedOut: number;
  /** Jobs not run: `runWhen` said no, `maxWaiting` was reached, or they were cancelled. */
  readonly dropped: number;
  /** Jobs not run because they joined an identical job of another request (`coalesce()`). */
  readonly coalesced: number;
}

/** What `drain()` resolves with. */
export interface DrainResult {
  /** `true` when every job settled in time. */
  readonly drained: boolean;
  /** The jobs still unfinished when the timeout came (awaiting their response, waiting, or running). */
  readonly unfinished: readonly Job[];
}

/** A job waiting for a free slot, with what it needs to start. */
interface Waiting {
  readonly job: Job;
  readonly ctx: Context;
  /** With `runAsync: false`: resolves the request's chain once the job has finished. */
  readonly finished: (() => void) | undefined;
}

/**
 * Runs jobs: within the concurrency bound, each under its timeout, reporting every outcome. It knows every
 * job not yet settled, from the moment it is scheduled, so that `onIdle()` and `drain()` also wait for jobs
 * whose response is still being sent. One runner per `raincheck()` middleware: nothing is shared between
 * apps or middleware instances.
 */
export class Runner implements JobReports {
  /** The options of the middleware this runner belongs to. */
  readonly settings: Settings;
  /**
   * The groups (requests) with jobs not yet settled, oldest first, for drain() to name those jobs: a list
   * linked through the groups. Per group, not per job: each store of a new object into this long-lived
   * one costs a write-barrier call, so one link per request rather than one per job.
   */
  #firstBusy: JobGroup | undefined;
  #lastBusy: JobGroup | undefined;
  #idleWaiters: Array<() => void> = [];
  #running = 0;
  readonly #waiting: Waiting[] = [];
  #waitingHead = 0;
  /** With `runAsync: false`: what ends the wait of a request's chain for a running job. */
  readonly #finished = new Map<Job, () => void>();
  // The counts of `stats`, as fields of their own rather than an object's: `this.#failed++` is less
  // bytecode than `this.#counts.failed++`, on paths whose bytecode V8's inlining budget counts. How many
  // were scheduled, and how many are pending, are sums of these: one count less to keep per job.
  #deduped = 0;
  #awaitingResponse = 0;
  #succeeded = 0;
  #failed = 0;
  #timedOut = 0;
  #dropped = 0;
  #coalesced = 0;
  /** The coalescing jobs others may join; made when the first one is released. */
  #coalescing: CoalescingIndex | undefined;
  /** @internal The `coalesce` option as a ttl, applied as jobs would start: `undefined` when they coalesce only if asked. */
  readonly coalesceTtl: number | undefined;

  constructor(settings: Settings) {
    this.settings = settings;
    const { coalesce } = settings;
    this.coalesceTtl = coalesce === false ? undefined : coalesce === true ? 0 : (coalesce.ttl ?? 0);
  }

  /** Jobs scheduled and not yet settled (awaiting their response, waiting for a slot, or running). */
  get pending(): number {
    return this.#awaitingResponse + (this.#waiting.length - this.#waitingHead) + this.#running;
  }

  get stats(): RaincheckStats {
    return {
      scheduled:
        this.pending + this.#succeeded + this.#failed + this.#timedOut + this.#dropped + this.#coalesced,
      deduped: this.#deduped,
      awaitingResponse: this.#awaitingResponse,
      succeeded: this.#succeeded,
      failed: this.#failed,
      timedOut: this.#timedOut,
      dropped: this.#dropped,
      coalesced: this.#coalesced,
      waiting: this.#waiting.length - this.#waitingHead,
      running: this.#running,
    };
  }

  /** Resolves when no job is pending; at once if none is. */
  onIdle(): Promise<void> {
    if (this.pending === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /**
   * Resolves when every pending job has settled, jobs scheduled meanwhile included; or, after `timeout` ms,
   * with the jobs still unfinished, whose signals it aborts. Never rejects.
   */
  async drain(timeout: number): Promise<DrainResult> {
    if (this.pending === 0) return { drained: true, unfinished: [] };
    if (timeout === Number.POSITIVE_INFINITY) {
      await this.onIdle();
      return { drained: true, unfinished: [] };
    }
    let timer: NodeJS.Timeout | undefined;
    const gaveUp = new Promise<true>((resolve) => {
      timer = setTimeout(resolve, timeout, true);
    });
    const timedOut = await Promise.race([this.onIdle(), gaveUp]);
    clearTimeout(timer);
    if (timedOut !== true) return { drained: true, unfinished: [] };
    const unfinished: Job[] = [];
    for (let group = this.#firstBusy; group !== undefined; group = group.nextBusy) {
      group.collectUnsettled(unfinished);
    }
    const reason = new RaincheckDrainTimeoutError(timeout);
    for (const job of unfinished) job.abort(reason);
    return { drained: false, unfinished };
  }

  /** @internal For `jobReporter()`: reports an error of a job without ending it. */
  report(error: unknown, job: Job, ctx: unknown): void {
    reportFailure(this.settings, error, job, ctx as Context);
  }

  /**
   * Counts a new job of `group` as pending, awaiting its response; it must later go to `runNow()` or
   * `release()`.
   */
  admit(job: Job, group: JobGroup): void {
    job.group = group;
    if (group.unsettled++ === 0) this.#linkBusy(group);
    this.#awaitingResponse++;
    if (instrument !== undefined) instrument.scheduled(job);
  }

  /** Counts a call collapsed into an earlier job. */
  countDeduped(): void {
    this.#deduped++;
  }

  /** Runs a job right away (the `immediate` option), whatever the request's outcome. */
  runNow(job: Job, ctx: Context): void {
    this.#awaitingResponse--;
    void this.#run(job, ctx, false);
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
    if (!this.settings.runAsync) {
      return Promise.resolve().then(() => this.#inOrder(first, last, outcome, ctx));
    }
    if (now) this.startEach(first, last, outcome, ctx);
    else process.nextTick(startEach, this, first, last, outcome, ctx);
    return undefined;
  }

  /** @internal Starts each job on its own; the ones `runWhen` rejects are dropped. */
  startEach(first: Job, last: Job, outcome: ResponseOutcome, ctx: Context): void {
    const run = this.#shouldRun(outcome);
    // Jobs appended meanwhile (scheduled by the ones started here) come after `last`: released on their own.
    for (let job = first; ; job = job.nextInRequest as Job) {
      this.#awaitingResponse--;
      const flags = job.flags;
      if (flags === ALWAYS || (run && flags === 0)) void this.#run(job, ctx, false);
      else this.#dropUnrun(job, outcome, ctx);
      if (job === last) return;
    }
  }

  async #inOrder(first: Job, last: Job, outcome: ResponseOutcome, ctx: Context): Promise<void> {
    const run = this.#shouldRun(outcome);
    for (let job = first; ; job = job.nextInRequest as Job) {
      this.#awaitingResponse--;
      const flags = job.flags;
      if (flags === ALWAYS || (run && flags === 0)) await this.#run(job, ctx, true);
      else this.#dropUnrun(job, outcome, ctx);
      if (job === last) return;
    }
  }

  /** A released job that is not run: cancelled, rolled back, or `runWhen` said no; or held, not yet. */
  #dropUnrun(job: Job, outcome: ResponseOutcome, ctx: Context): void {
    if ((job.flags & HELD) !== 0) {
      this.#park(job, outcome, ctx);
      return;
    }
    const reason = dropReasonOf(job);
    this.#drop(job, ctx, outcome, () => reportDrop(this.settings, job, outcome, ctx, reason));
  }

  /**
   * A job whose response is over but whose calls are all inside transactions not yet committed: it stays
   * pending (awaiting), and is released on its own, under the same outcome, once one commits or all roll
   * back (see transaction.ts).
   */
  #park(job: Job, outcome: ResponseOutcome, ctx: Context): void {
    this.#awaitingResponse++;
    askedOf(job).parked = (parked) => this.release(parked, parked, outcome, ctx, false);
  }

  /**
   * A cancelled job of a request whose response is over: if it waits for a slot, it is dropped now; one
   * still to be started (released on the next tick, or later in a `runAsync: false` chain) is dropped there.
   */
  cancelWaiting(job: Job, outcome: ResponseOutcome): void {
    for (let i = this.#waitingHead; i < this.#waiting.length; i++) {
      const waiting = this.#waiting[i] as Waiting;
      if (waiting.job !== job) continue;
      this.#waiting.splice(i, 1);
      this.#dropUnrun(job, outcome, waiting.ctx);
      waiting.finished?.();
      return;
    }
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

  /**
   * Starts the job if a slot is free, or queues it for one. With `wait`, returns a promise of the job's end
   * (never rejecting) for the request's chain.
   */
  #run(job: Job, ctx: Context, wait: boolean): Promise<void> | undefined {
    if ((job.asked !== undefined || this.coalesceTtl !== undefined) && this.#joined(job, ctx))
      return undefined;
    if (this.#running < this.settings.concurrency) return this.#start(job, ctx, wait);
    return this.#wait(job, ctx, wait);
  }

  /** No free slot: the job waits for one, or is turned away past `maxWaiting`. Apart: see `#finish`. */
  #wait(job: Job, ctx: Context, wait: boolean): Promise<void> | undefined {
    if (this.#waiting.length - this.#waitingHead >= this.settings.maxWaiting) {
      const error = new RaincheckOverflowError(job, this.settings.maxWaiting);
      this.#drop(job, ctx, error, () => reportFailure(this.settings, error, job, ctx));
      return undefined;
    }
    if (!wait) {
      this.#waiting.push({ job, ctx, finished: undefined });
      return undefined;
    }
    return new Promise((finished) => this.#waiting.push({ job, ctx, finished }));
  }

  /**
   * A coalescing job about to run: if an identical one waits for a slot, runs, or succeeded within its
   * ttl, this one joins it and settles as `'coalesced'`; otherwise it is the one others will join.
   */
  #joined(job: Job, ctx: Context): boolean {
    // The `coalesce` option, for a job that did not ask itself: applied here, not where jobs are made.
    if (this.coalesceTtl !== undefined) {
      const asked = askedOf(job);
      asked.coalesceTtl = Math.max(asked.coalesceTtl ?? 0, this.coalesceTtl);
      fingerprintFor(job); // with `dedupe: false` too
    } else if (job.asked?.coalesceTtl === undefined) {
      return false; // it asked something else (a timeout), not to coalesce
    }
    this.#coalescing ??= new CoalescingIndex();
    const target = this.#coalescing.joinOrEnter(job);
    if (target === undefined) return false;
    job.join(target);
    job.state = 'coalesced';
    this.#coalesced++;
    publishEnd(job, undefined, undefined);
    if (instrument !== undefined) instrument.ended(job, ctx, undefined, undefined);
    this.#settle(job);
    return true;
  }

  /** Never throws nor rejects: a failure, thrown or rejected, Error or not, goes to `onError`. */
  #start(job: Job, ctx: Context, wait: boolean): Promise<void> | undefined {
    this.#running++;
    job.state = 'running';
    const startedAt = publishStart(job);
    let result: unknown;
    let thenable: boolean;
    try {
      result = callJob(job, this.settings.trackJobs);
      thenable = isThenable(result); // inside: a `then` getter may throw (a strict Proxy, say)
    } catch (error) {
      this.#finish(job, ctx, 'failed', error, startedAt, undefined);
      return undefined;
    }
    if (thenable) return this.#settleLater(job, ctx, wait, result as PromiseLike<unknown>, startedAt);
    this.#finish(job, ctx, 'succeeded', undefined, startedAt, undefined);
    return undefined;
  }

  /** An async job: its end, or its timeout, whichever comes first. Apart, so a sync job's path stays short. */
  #settleLater(
    job: Job,
    ctx: Context,
    wait: boolean,
    result: PromiseLike<unknown>,
    startedAt: number | undefined,
  ): Promise<void> | undefined {
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
    if (!wait || job.state !== 'running') return undefined;
    return new Promise((finished) => this.#finished.set(job, finished));
  }

  /** The one place a started job ends; whichever of its end and its timeout comes second is ignored. */
  #finish(
    job: Job,
    ctx: Context,
    state: 'succeeded' | 'failed' | 'timedOut',
    error: unknown,
    startedAt: number | undefined,
    timer: NodeJS.Timeout | undefined,
  ): void {
    // Kept short, the rarer work in methods of their own: V8 inlines within a budget of bytecode, and a
    // short #finish leaves room in #start and startEach for the rest of the hot path.
    if (job.state !== 'running') return;
    if (timer !== undefined) clearTimeout(timer);
    job.state = state;
    this.#running--;
    if (state === 'succeeded') this.#succeeded++;
    else this.#failedOrTimedOut(job, ctx, state, error);
    if (job.asked !== undefined) this.#endCoalescing(job);
    publishEnd(job, startedAt, error);
    if (instrument !== undefined) instrument.ended(job, ctx, error, undefined);
    if (this.#finished.size !== 0) this.#endWait(job);
    this.#settle(job);
    if (this.#waitingHead < this.#waiting.length) this.#startWaiting();
  }

  #endCoalescing(job: Job): void {
    const ttl = job.asked?.coalesceTtl;
    if (ttl !== undefined) this.#coalescing?.ended(job, ttl);
  }

  #failedOrTimedOut(job: Job, ctx: Context, state: 'failed' | 'timedOut', error: unknown): void {
    if (state === 'failed') this.#failed++;
    else this.#timedOut++;
    reportFailure(this.settings, error, job, ctx);
  }

  /** With `runAsync: false`: lets the request's chain go on past a job that has ended. */
  #endWait(job: Job): void {
    const finished = this.#finished.get(job);
    if (finished === undefined) return;
    this.#finished.delete(job);
    finished();
  }

  /** `why`: the outcome `runWhen` said no to, or the overflow error. */
  #drop(job: Job, ctx: Context, why: ResponseOutcome | Error, report: () => void): void {
    job.state = 'dropped';
    this.#dropped++;
    if (job.asked?.coalesceTtl !== undefined) this.#coalescing?.ended(job, 0); // overflowed, or cancelled
    report();
    publishEnd(job, undefined, why instanceof Error ? why : undefined);
    if (instrument !== undefined) {
      if (why instanceof Error) instrument.ended(job, ctx, why, undefined);
      else instrument.ended(job, ctx, undefined, why);
    }
    this.#settle(job);
  }

  /** Fills the free slots from the waiting jobs, first come first served. */
  #startWaiting(): void {
    while (this.#running < this.settings.concurrency && this.#waitingHead < this.#waiting.length) {
      const next = this.#waiting[this.#waitingHead] as Waiting;
      this.#waiting[this.#waitingHead++] = undefined as unknown as Waiting; // let it go
      if (this.#waitingHead === this.#waiting.length) {
        this.#waiting.length = 0;
        this.#waitingHead = 0;
      }
      const end = this.#start(next.job, next.ctx, next.finished !== undefined);
      if (next.finished !== undefined) {
        if (end === undefined) next.finished();
        else void end.then(next.finished);
      }
    }
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
    if (--group.unsettled === 0) this.#unlinkBusy(group);
    if (this.#idleWaiters.length !== 0 && this.pending === 0) this.#wakeIdleWaiters();
  }

  #wakeIdleWaiters(): void {
    const waiters = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const resolve of waiters) resolve();
  }

  #linkBusy(group: JobGroup): void {
    group.previousBusy = this.#lastBusy;
    if (this.#lastBusy === undefined) this.#firstBusy = group;
    else this.#lastBusy.nextBusy = group;
    this.#lastBusy = group;
  }

  #unlinkBusy(group: JobGroup): void {
    const { previousBusy: previous, nextBusy: next } = group;
    if (previous === undefined) this.#firstBusy = next;
    else previous.nextBusy = next;
    if (next === undefined) this.#lastBusy = previous;
    else next.previousBusy = previous;
    group.previousBusy = undefined;
    group.nextBusy = undefined;
  }
}

function startEach(runner: Runner, first: Job, last: Job, outcome: ResponseOutcome, ctx: Context): void {
  runner.startEach(first, last, outcome, ctx);
}
