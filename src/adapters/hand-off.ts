import { channel } from 'node:diagnostics_channel';
import { debuglog } from 'node:util';
import { currentReporter } from '../job-context.js';
import { typeName } from '../options.js';

/** Options shared by the durable-queue adapters. */
export interface HandOffOptions {
  /**
   * An identical job (same name, equal data) already in the queue is not added again, across requests and
   * processes: a hash of name and data becomes the queue's own id for the job (BullMQ's `jobId`, pg-boss's
   * `singletonKey`), as procrastinate's `queueing_lock` does. Within one request, identical calls are
   * collapsed anyway, as every `ctx.raincheck()` call is.
   * @default false
   */
  readonly dedupeAcrossRequests?: boolean | undefined;
  /**
   * How many times to try adding the job when the queue's server does not answer. Each failed attempt
   * before the last is reported (`onError`, as a `RaincheckEnqueueError`) and retried; the last one fails
   * the job, reported the same way.
   * @default 5
   */
  readonly attempts?: number | undefined;
  /** The wait before the second attempt, in ms, doubled before each further one. @default 200 */
  readonly backoff?: number | undefined;
  /** How long one attempt may take, in ms (a client may otherwise wait for its server forever). @default 5000 */
  readonly attemptTimeout?: number | undefined;
}

export type HandOffSettings = Required<{
  [K in keyof HandOffOptions]: Exclude<HandOffOptions[K], undefined>;
}>;

export function resolveHandOffOptions(options: HandOffOptions | undefined): HandOffSettings {
  const settings = { dedupeAcrossRequests: false, attempts: 5, backoff: 200, attemptTimeout: 5000 };
  for (const [name, value] of Object.entries(options ?? {})) {
    if (value === undefined) continue;
    if (!Object.hasOwn(settings, name)) {
      throw new TypeError(`Unknown option \`${name}\`; expected one of ${Object.keys(settings).join(', ')}`);
    }
    const expected = name === 'dedupeAcrossRequests' ? 'boolean' : 'number';
    const ok = expected === 'boolean' ? typeof value === 'boolean' : typeof value === 'number' && value > 0;
    if (!ok || (name === 'attempts' && !Number.isInteger(value))) {
      const what =
        expected === 'boolean'
          ? 'a boolean'
          : name === 'attempts'
            ? 'a whole number >= 1'
            : 'a positive number';
      const given = typeof value === 'number' ? value : typeName(value);
      throw new TypeError(`Expected \`options.${name}\` to be ${what}, got \`${given}\``);
    }
    (settings as Record<string, unknown>)[name] = value;
  }
  return settings;
}

/**
 * A failed attempt to add a job to a durable queue: names the queue, the job, its data and the id every
 * attempt used. An attempt that timed out is not cancelled (a Redis client keeps commands offline until
 * the server is back, and a query may be under way), so even after the last one the job may still be added
 * later, under that id: a retry must use it (BullMQ's `jobId`, pg-boss's `id`), which the queue does not
 * add twice while it holds the job.
 */
export class RaincheckEnqueueError extends Error {
  override readonly name: string = 'RaincheckEnqueueError';
  readonly queue: string;
  readonly jobName: string;
  readonly data: unknown;
  readonly attempt: number;
  readonly attempts: number;
  /** The queue's id for the job, the same in every attempt: BullMQ's `jobId`, pg-boss's `id`. */
  readonly jobId: string | undefined;

  constructor(
    queue: string,
    jobName: string,
    data: unknown,
    attempt: number,
    attempts: number,
    cause: unknown,
    jobId?: string,
  ) {
    const givingUp = attempt >= attempts;
    // The job's data stays out of the message, which logs print (emails, tokens): it is on `data`.
    const id = jobId === undefined ? '' : `; job id ${jobId}`;
    const late =
      jobId === undefined || !givingUp
        ? ''
        : `. The job may still be added later, as job id ${jobId}, by an attempt that timed out: retry under that id only`;
    super(
      `koa-raincheck: could not add job ${jobName} to queue ${queue} ` +
        `(attempt ${attempt} of ${attempts}, ${givingUp ? 'giving up' : 'retrying'}): ` +
        `${cause instanceof Error ? cause.message : String(cause)}${id}${late}`,
      { cause },
    );
    this.queue = queue;
    this.jobName = jobName;
    this.data = data;
    this.attempt = attempt;
    this.attempts = attempts;
    this.jobId = jobId;
  }
}

/** What is being handed over, for reports. */
export interface HandOff {
  readonly queue: string;
  readonly name: string;
  readonly data: unknown;
  /** The id every attempt uses. */
  readonly jobId: string;
}

/**
 * Calls `add` until it succeeds, at most `attempts` times, waiting `backoff` ms (doubled each time) between
 * attempts and giving each one `attemptTimeout` ms. Must be called at the start of a job, before any
 * `await`, to report failed attempts where the job's failures go. `add` must be idempotent, every attempt
 * using `what.jobId`: an attempt that timed out may still have added the job, or may still add it later.
 */
export async function addWithRetries<T>(
  settings: HandOffSettings,
  what: HandOff,
  add: () => Promise<T>,
): Promise<T> {
  const report = currentReporter() ?? ((error: unknown) => process.emitWarning(error as Error));
  for (let attempt = 1; ; attempt++) {
    try {
      return await withTimeout(add(), settings.attemptTimeout);
    } catch (cause) {
      const error = new RaincheckEnqueueError(
        what.queue,
        what.name,
        what.data,
        attempt,
        settings.attempts,
        cause,
        what.jobId,
      );
      if (attempt >= settings.attempts) throw error;
      report(error);
      await new Promise((resolve) => setTimeout(resolve, settings.backoff * 2 ** (attempt - 1)));
    }
  }
}

/**
 * `koa-raincheck:hand-off:deduped` gets `{ queue, name, data, jobId, singletonKey }` for each hand-off the
 * queue accepted without adding a job: pg-boss's `send()` resolving `null`.
 */
export const dedupedChannel = channel('koa-raincheck:hand-off:deduped');

const debug = debuglog('koa-raincheck');

/**
 * A hand-off the queue took without adding a job, as pg-boss does when it already holds one with the same
 * `singletonKey` (`dedupeAcrossRequests`) or id, or when the queue's policy or throttling turns it away.
 * Not a failure (it is the queue's own dedupe at work), so it goes where drops go, a line under
 * `NODE_DEBUG=koa-raincheck`, and to a channel for whoever counts them. The data stays out of the line.
 */
export function reportDeduped(what: HandOff & { readonly singletonKey: string | undefined }): void {
  const key = what.singletonKey === undefined ? 'no singletonKey' : `singletonKey ${what.singletonKey}`;
  debug(
    'job %s was not added to queue %s: the queue already holds one with its %s or job id %s, or its policy turned it away',
    what.name,
    what.queue,
    key,
    what.jobId,
  );
  if (dedupedChannel.hasSubscribers) dedupedChannel.publish(what);
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  promise.catch(() => {}); // a late rejection after the timeout must not go unhandled
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
