import type { Context } from 'koa';
import type { Job } from './job.js';
import type { ResponseOutcome, Settings } from './options.js';
import { isThenable, reportDrop, reportFailure, warnHookFailed } from './report.js';

/**
 * Runs jobs and keeps count of the ones not yet settled, from the moment they are scheduled, so that
 * `onIdle()` also waits for jobs whose response is still being sent. One runner per `raincheck()`
 * middleware: nothing is shared between apps or middleware instances.
 */
export class Runner {
  /** The options of the middleware this runner belongs to. */
  readonly settings: Settings;
  #pending = 0;
  #idleWaiters: Array<() => void> = [];

  constructor(settings: Settings) {
    this.settings = settings;
  }

  /** Jobs scheduled and not yet settled (waiting for their response, or running). */
  get pending(): number {
    return this.#pending;
  }

  /** Resolves when no job is pending; at once if none is. */
  onIdle(): Promise<void> {
    if (this.#pending === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /** Counts a job as pending; it must later go through `runNow()` or `release()`. */
  admit(): void {
    this.#pending++;
  }

  /** Runs a job right away (the `immediate` option), whatever the request's outcome. */
  runNow(job: Job, ctx: Context): void {
    void this.#run(job, ctx);
  }

  /**
   * Hands over jobs whose response is over. They start on the next tick, never inside the caller, so that
   * `.always()` can still be chained after a late `ctx.raincheck()`. With `runAsync: false`, returns a
   * promise of their end, one after another (it never rejects).
   */
  release(jobs: readonly Job[], outcome: ResponseOutcome, ctx: Context): Promise<void> | undefined {
    if (this.settings.runAsync) {
      process.nextTick(startEach, this, jobs, outcome, ctx);
      return undefined;
    }
    return Promise.resolve().then(() => this.#inOrder(jobs, outcome, ctx));
  }

  /** @internal Starts each job on its own; the ones `runWhen` rejects are dropped. */
  startEach(jobs: readonly Job[], outcome: ResponseOutcome, ctx: Context): void {
    const run = this.#shouldRun(outcome);
    for (const job of jobs) {
      if (run || job.runsAlways) void this.#run(job, ctx);
      else this.#drop(job, outcome, ctx);
    }
  }

  async #inOrder(jobs: readonly Job[], outcome: ResponseOutcome, ctx: Context): Promise<void> {
    const run = this.#shouldRun(outcome);
    for (const job of jobs) {
      if (run || job.runsAlways) await this.#run(job, ctx);
      else this.#drop(job, outcome, ctx);
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

  #drop(job: Job, outcome: ResponseOutcome, ctx: Context): void {
    job.state = 'dropped';
    reportDrop(this.settings, job, outcome, ctx);
    this.#settle();
  }

  /**
   * Never throws nor rejects: a failure, thrown or rejected, Error or not, goes to `onError`. A job that
   * returns no promise settles at once, without one being made for it.
   */
  #run(job: Job, ctx: Context): Promise<void> | undefined {
    job.state = 'running';
    let result: unknown;
    try {
      result = job.fn(...job.args);
    } catch (error) {
      this.#fail(job, error, ctx);
      return undefined;
    }
    if (!isThenable(result)) {
      this.#succeed(job);
      return undefined;
    }
    // Promise.resolve() also tames a thenable whose then() throws.
    return Promise.resolve(result).then(
      () => this.#succeed(job),
      (error: unknown) => this.#fail(job, error, ctx),
    );
  }

  #succeed(job: Job): void {
    job.state = 'succeeded';
    this.#settle();
  }

  #fail(job: Job, error: unknown, ctx: Context): void {
    job.state = 'failed';
    reportFailure(this.settings, error, job, ctx);
    this.#settle();
  }

  #settle(): void {
    if (--this.#pending > 0) return;
    const waiters = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const resolve of waiters) resolve();
  }
}

function startEach(runner: Runner, jobs: readonly Job[], outcome: ResponseOutcome, ctx: Context): void {
  runner.startEach(jobs, outcome, ctx);
}
