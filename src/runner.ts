import type { Context } from 'koa';
import type { Job } from './job.js';
import type { ResponseOutcome, Settings } from './options.js';
import { reportDrop, reportFailure, warnHookFailed } from './report.js';

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
   * Hands over jobs whose response is over. They start on the next turn of the event loop, which lets
   * `.always()` be chained after `ctx.raincheck()` and lets Node get on with the connection first.
   * Resolves when they have settled; never rejects.
   */
  release(jobs: readonly Job[], outcome: ResponseOutcome, ctx: Context): Promise<void> {
    return new Promise((resolve) => {
      setImmediate(() => resolve(this.#start(jobs, outcome, ctx)));
    });
  }

  async #start(jobs: readonly Job[], outcome: ResponseOutcome, ctx: Context): Promise<void> {
    const run = this.#shouldRun(outcome);
    const toRun: Job[] = [];
    for (const job of jobs) {
      if (run || job.runsAlways) toRun.push(job);
      else this.#drop(job, outcome, ctx);
    }
    if (this.settings.runAsync) {
      for (const job of toRun) void this.#run(job, ctx);
    } else {
      for (const job of toRun) await this.#run(job, ctx);
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

  /** Never rejects: a failure, thrown or rejected, Error or not, goes to `onError`. */
  async #run(job: Job, ctx: Context): Promise<void> {
    job.state = 'running';
    try {
      await job.fn(...job.args);
      job.state = 'succeeded';
    } catch (error) {
      job.state = 'failed';
      reportFailure(this.settings, error, job, ctx);
    } finally {
      this.#settle();
    }
  }

  #settle(): void {
    if (--this.#pending > 0) return;
    const waiters = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const resolve of waiters) resolve();
  }
}
