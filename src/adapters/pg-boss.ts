import { randomUUID } from 'node:crypto';
import type PgBoss from 'pg-boss';
import { type Rainchecked, rainchecked } from '../ambient.js';
import { contentHash } from './content-hash.js';
import { addWithRetries, type HandOffOptions, resolveHandOffOptions } from './hand-off.js';

export { type HandOffOptions, RaincheckEnqueueError } from './hand-off.js';

/** Sends job `name` (a pg-boss queue) with `data`; resolves with the job's id, or `null` if deduped. */
export type SendToPgBoss = (
  name: string,
  data?: object,
  options?: PgBoss.SendOptions,
) => Promise<string | null>;

/**
 * A function that sends a job to pg-boss, made to be scheduled: `ctx.raincheck(toBoss, 'welcome', { to })`
 * or `toBoss.schedule('welcome', { to })` sends it after the response, only for a request that succeeded
 * (the same rules and `.always()` as any job), retrying while PostgreSQL does not answer.
 * `dedupeAcrossRequests` passes a hash of name and data as `singletonKey`, which pg-boss enforces on queues
 * created with a policy that allows one queued job per key (`short`, `stately`, `exclusive`).
 * @throws {TypeError} when `boss` is not a pg-boss instance or an option is wrong.
 */
export function pgBoss(boss: PgBoss, options?: HandOffOptions): Rainchecked<SendToPgBoss> {
  if (typeof (boss as Partial<PgBoss> | null)?.send !== 'function') {
    throw new TypeError(
      `Expected \`boss\` to be a PgBoss instance, got \`${boss === null ? 'null' : typeof boss}\``,
    );
  }
  const settings = resolveHandOffOptions(options);
  async function sendToPgBoss(
    name: string,
    data?: object,
    sendOptions?: PgBoss.SendOptions,
  ): Promise<string | null> {
    // One id for every attempt, so that an attempt that timed out but got through is not sent twice.
    const id = sendOptions?.id ?? randomUUID();
    const singletonKey =
      sendOptions?.singletonKey ??
      (settings.dedupeAcrossRequests ? contentHash(name, name, data) : undefined);
    const options: PgBoss.SendOptions = {
      ...sendOptions,
      id,
      ...(singletonKey === undefined ? {} : { singletonKey }),
    };
    return addWithRetries(settings, { queue: name, name, data }, () => boss.send(name, data ?? {}, options));
  }
  return rainchecked(sendToPgBoss);
}
