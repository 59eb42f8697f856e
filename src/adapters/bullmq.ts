import { randomUUID } from 'node:crypto';
import { type Rainchecked, rainchecked } from '../ambient.js';
import { typeName } from '../options.js';
import { contentHash } from './content-hash.js';
import { addWithRetries, type HandOffOptions, resolveHandOffOptions } from './hand-off.js';

export { type HandOffOptions, RaincheckEnqueueError } from './hand-off.js';

/**
 * What the adapter uses of a BullMQ `Queue`. Typed by shape, so that a `Queue` of any supported major
 * (5, 6) fits and this package's types import nothing from bullmq.
 */
export interface BullmqQueueLike {
  readonly name: string;
  // Method syntax on purpose: its parameters compare both ways, so a typed `Queue<Data, Result, Name>` fits.
  add(
    name: string,
    data: unknown,
    opts?: BullmqJobOptionsLike,
  ): Promise<{ readonly id?: string | undefined }>;
}

/** The one per-job option the adapter reads: BullMQ's `jobId`. */
export interface BullmqJobOptionsLike {
  readonly jobId?: string;
}

/** The per-job options of queue `Q`'s `add()`: the `JobsOptions` of the bullmq major installed. */
export type BullmqJobOptionsOf<Q extends BullmqQueueLike> = NonNullable<Parameters<Q['add']>[2]>;

/** Adds job `name` with `data` to the queue; resolves with the job's id. */
export type AddToBullmq<Q extends BullmqQueueLike = BullmqQueueLike> = (
  name: string,
  data?: unknown,
  options?: BullmqJobOptionsOf<Q>,
) => Promise<string>;

/**
 * A function that adds a job to a BullMQ queue, made to be scheduled: `ctx.raincheck(toEmails, 'welcome',
 * { to })` or `toEmails.schedule('welcome', { to })` adds it after the response, only for a request that
 * succeeded (the same rules and `.always()` as any job), retrying while Redis does not answer.
 * @throws {TypeError} when `queue` is not a BullMQ queue or an option is wrong.
 */
export function bullmq<Q extends BullmqQueueLike>(
  queue: Q,
  options?: HandOffOptions,
): Rainchecked<AddToBullmq<Q>> {
  const given = queue as Partial<BullmqQueueLike> | null | undefined;
  if (typeof given?.add !== 'function' || typeof given.name !== 'string') {
    throw new TypeError(`Expected \`queue\` to be a BullMQ Queue, got \`${typeName(queue)}\``);
  }
  const settings = resolveHandOffOptions(options);
  async function addToBullmq(
    name: string,
    data?: unknown,
    jobOptions?: BullmqJobOptionsLike,
  ): Promise<string> {
    // One id for every attempt, so that an attempt that timed out but got through is not added twice.
    const jobId =
      jobOptions?.jobId ??
      (settings.dedupeAcrossRequests ? `raincheck-${contentHash(queue.name, name, data)}` : randomUUID());
    const job = await addWithRetries(settings, { queue: queue.name, name, data, jobId }, () =>
      queue.add(name, data, { ...jobOptions, jobId }),
    );
    return job.id ?? jobId;
  }
  // The options are the installed major's `JobsOptions`, of which only `jobId` is read here.
  return rainchecked(addToBullmq) as Rainchecked<AddToBullmq<Q>>;
}
