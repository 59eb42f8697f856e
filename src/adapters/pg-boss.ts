import { randomUUID } from 'node:crypto';
import { type Rainchecked, rainchecked } from '../ambient.js';
import { typeName } from '../options.js';
import { contentHash } from './content-hash.js';
import { addWithRetries, type HandOffOptions, reportDeduped, resolveHandOffOptions } from './hand-off.js';

export { type HandOffOptions, RaincheckEnqueueError } from './hand-off.js';

/**
 * What the adapter uses of a `PgBoss` instance. Typed by shape, so that pg-boss 10 and 11 (`export =`) and
 * 12 (named export `{ PgBoss }`) all fit and this package's types import nothing from pg-boss.
 */
export interface PgBossLike {
  // Method syntax on purpose: its parameters compare both ways, so each major's own `SendOptions` fits.
  send(name: string, data: object, options: PgBossSendOptionsLike): Promise<string | null>;
}

/** The per-job options the adapter reads: pg-boss's `id` and `singletonKey`. */
export interface PgBossSendOptionsLike {
  readonly id?: string;
  readonly singletonKey?: string;
}

/** The per-job options of `B`'s `send()`: the `SendOptions` of the pg-boss major installed. */
export type PgBossSendOptionsOf<B extends PgBossLike> = NonNullable<Parameters<B['send']>[2]>;

/**
 * Sends job `name` (a pg-boss queue) with `data`; resolves with the job's id, or `null` when pg-boss added
 * none (deduped by the queue: see `koa-raincheck:hand-off:deduped`).
 */
export type SendToPgBoss<B extends PgBossLike = PgBossLike> = (
  name: string,
  data?: object,
  options?: PgBossSendOptionsOf<B>,
) => Promise<string | null>;

/**
 * A function that sends a job to pg-boss, made to be scheduled: `ctx.raincheck(toBoss, 'welcome', { to })`
 * or `toBoss.schedule('welcome', { to })` sends it after the response, only for a request that succeeded
 * (the same rules and `.always()` as any job), retrying while PostgreSQL does not answer.
 * `dedupeAcrossRequests` passes a hash of name and data as `singletonKey`, which pg-boss enforces on queues
 * created with a policy that allows one queued job per key (`short`, `stately`, `exclusive`).
 * @throws {TypeError} when `boss` is not a pg-boss instance or an option is wrong.
 */
export function pgBoss<B extends PgBossLike>(
  boss: B,
  options?: HandOffOptions,
): Rainchecked<SendToPgBoss<B>> {
  if (typeof (boss as Partial<PgBossLike> | null | undefined)?.send !== 'function') {
    throw new TypeError(`Expected \`boss\` to be a PgBoss instance, got \`${typeName(boss)}\``);
  }
  const settings = resolveHandOffOptions(options);
  async function sendToPgBoss(
    name: string,
    data?: object,
    sendOptions?: PgBossSendOptionsLike,
  ): Promise<string | null> {
    // One id for every attempt, so that an attempt that timed out but got through is not sent twice.
    const id = sendOptions?.id ?? randomUUID();
    const singletonKey =
      sendOptions?.singletonKey ??
      (settings.dedupeAcrossRequests ? contentHash(name, name, data) : undefined);
    const options: PgBossSendOptionsLike = {
      ...sendOptions,
      id,
      ...(singletonKey === undefined ? {} : { singletonKey }),
    };
    const what = { queue: name, name, data, jobId: id };
    const sent = await addWithRetries(settings, what, () => boss.send(name, data ?? {}, options));
    // The job still succeeds: the queue did what it was set up to do. But it is said, not counted silently.
    if (sent === null) reportDeduped({ ...what, singletonKey });
    return sent;
  }
  // The options are the installed major's `SendOptions`, of which only `id` and `singletonKey` are read here.
  return rainchecked(sendToPgBoss) as Rainchecked<SendToPgBoss<B>>;
}
