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

/** A failed attempt to add a job to a durable queue: names the queue, the job and its data. */
export class RaincheckEnqueueError extends Error {
  override readonly name: string = 'RaincheckEnqueueError';
  readonly queue: string;
  readonly jobName: string;
  readonly data: unknown;
  readonly attempt: number;
  readonly attempts: number;

  constructor(
    queue: string,
    jobName: string,
    data: unknown,
    attempt: number,
    attempts: number,
    cause: unknown,
  ) {
    const then = attempt < attempts ? 'retrying' : 'giving up';
    super(
      `koa-raincheck: could not add job ${jobName} to queue ${queue} (attempt ${attempt} of ${attempts}, ${then}): ` +
        `${cause instanceof Error ? cause.message : String(cause)}; data: ${safeJson(data)}`,
      { cause },
    );
    this.queue = queue;
    this.jobName = jobName;
    this.data = data;
    this.attempt = attempt;
    this.attempts = attempts;
  }
}

/**
 * Calls `add` until it succeeds, at most `attempts` times, waiting `backoff` ms (doubled each time) between
 * attempts and giving each one `attemptTimeout` ms. Must be called at the start of a job, before any
 * `await`, to report failed attempts where the job's failures go. `add` must be idempotent: an attempt
 * that timed out may still have added the job.
 */
export async function addWithRetries<T>(
  settings: HandOffSettings,
  what: { readonly queue: string; readonly name: string; readonly data: unknown },
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
      );
      if (attempt >= settings.attempts) throw error;
      report(error);
      await new Promise((resolve) => setTimeout(resolve, settings.backoff * 2 ** (attempt - 1)));
    }
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  promise.catch(() => {}); // a late rejection after the timeout must not go unhandled
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function safeJson(data: unknown): string {
  try {
    const json = JSON.stringify(data) ?? String(data);
    return json.length > 200 ? `${json.slice(0, 200)}…` : json;
  } catch {
    return String(data);
  }
}
