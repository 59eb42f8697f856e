import { randomUUID } from 'node:crypto';
import type { JobsOptions, Queue } from 'bullmq';
import { type Rainchecked, rainchecked } from '../ambient.js';
import { contentHash } from './content-hash.js';
import { addWithRetries, type HandOffOptions, resolveHandOffOptions } from './hand-off.js';

export { type HandOffOptions, RaincheckEnqueueError } from './hand-off.js';

/** Adds job `name` with `data` to the queue; resolves with the job's id. */
export type AddToBullmq = (name: string, data?: unknown, options?: JobsOptions) => Promise<string>;

/**
 * A function that adds a job to a BullMQ queue, made to be scheduled: `ctx.raincheck(toEmails, 'welcome',
 * { to })` or `toEmails.schedule('welcome', { to })` adds it after the response, only for a request that
 * succeeded (the same rules and `.always()` as any job), retrying while Redis does not answer.
 * @throws {TypeError} when `queue` is not a BullMQ queue or an option is wrong.
 */
export function bullmq(queue: Queue, options?: HandOffOptions): Rainchecked<AddToBullmq> {
  if (typeof (queue as Partial<Queue> | null)?.add !== 'function') {
    throw new TypeError(
      `Expected \`queue\` to be a BullMQ Queue, got \`${queue === null ? 'null' : typeof queue}\``,
    );
  }
  const settings = resolveHandOffOptions(options);
  async function addToBullmq(name: string, data?: unknown, jobOptions?: JobsOptions): Promise<string> {
    // One id for every attempt, so that an attempt that timed out but got through is not added twice.
    const jobId =
      jobOptions?.jobId ??
      (settings.dedupeAcrossRequests ? `raincheck-${contentHash(queue.name, name, data)}` : randomUUID());
    const job = await addWithRetries(settings, { queue: queue.name, name, data }, () =>
      queue.add(name, data, { ...jobOptions, jobId }),
    );
    return job.id ?? jobId;
  }
  return rainchecked(addToBullmq);
}
