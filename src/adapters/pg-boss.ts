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

/** The per-job options the adapter reads or sets: pg-boss's `id`, `singletonKey` and `db`. */
export interface PgBossSendOptionsLike {
  readonly id?: string;
  readonly singletonKey?: string;
  readonly db?: PgBossDbLike;
}

/**
 * What pg-boss's `db` send option takes (pg-boss 10 and 11 call it `Db`, 12 `IDatabase`): an object that
 * runs pg-boss's SQL on a connection of the app's, so that the job is written by the app's own transaction.
 * pg-boss 12 makes one from a transaction: `fromKnex(trx)`, `fromKysely(trx)`, `fromDrizzle(tx, sql)`,
 * `fromPglite(pg)`; with node-postgres it is `{ executeSql: (text, values) => client.query(text, values) }`.
 */
export interface PgBossDbLike {
  // Method syntax on purpose, as in PgBossLike: each major's own type fits.
  executeSql(text: string, values?: unknown[]): Promise<{ readonly rows: unknown[] }>;
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
 * Sends job `name` with `data` at once, through `db`: inside the app's open transaction, so that the job is
 * written by the same commit as the data and a rollback leaves none. Resolves with the job's id, or `null`
 * when pg-boss added none (deduped by the queue). Errors are the caller's, as any query of the transaction.
 */
export type SendToPgBossWithin<B extends PgBossLike = PgBossLike> = (
  db: PgBossDbLike,
  name: string,
  data?: object,
  options?: PgBossSendOptionsOf<B>,
) => Promise<string | null>;

/** What `pgBoss()` returns: the hand-off after the response, and `within` for one inside a transaction. */
export type PgBossHandOff<B extends PgBossLike = PgBossLike> = Rainchecked<SendToPgBoss<B>> & {
  /** The hand-off inside the app's transaction, not after the response: see `SendToPgBossWithin`. */
  readonly within: SendToPgBossWithin<B>;
};

/**
 * A function that sends a job to pg-boss, made to be scheduled: `ctx.raincheck(toBoss, 'welcome', { to })`
 * or `toBoss.schedule('welcome', { to })` sends it after the response, only for a request that succeeded
 * (the same rules and `.always()` as any job), retrying while PostgreSQL does not answer.
 * `dedupeAcrossRequests` passes a hash of name and data as `singletonKey`, which pg-boss enforces on queues
 * created with a policy that allows one queued job per key (`short`, `stately`, `exclusive`).
 * `.within(db, name, data)` sends at once instead, inside the app's transaction (pg-boss's `db` option),
 * with the same id and `singletonKey` rules and no retries: see docs/transactions.md.
 * @throws {TypeError} when `boss` is not a pg-boss instance or an option is wrong.
 */
export function pgBoss<B extends PgBossLike>(boss: B, options?: HandOffOptions): PgBossHandOff<B> {
  if (typeof (boss as Partial<PgBossLike> | null | undefined)?.send !== 'function') {
    throw new TypeError(`Expected \`boss\` to be a PgBoss instance, got \`${typeName(boss)}\``);
  }
  const settings = resolveHandOffOptions(options);
  /** The send options with the id and `singletonKey` rules applied. */
  function optionsFor(
    name: string,
    data: object | undefined,
    sendOptions: PgBossSendOptionsLike | undefined,
  ) {
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
    return { options, what: { queue: name, name, data, jobId: id }, singletonKey };
  }
  async function sendToPgBoss(
    name: string,
    data?: object,
    sendOptions?: PgBossSendOptionsLike,
  ): Promise<string | null> {
    const { options, what, singletonKey } = optionsFor(name, data, sendOptions);
    const sent = await addWithRetries(settings, what, () => boss.send(name, data ?? {}, options));
    // The job still succeeds: the queue did what it was set up to do. But it is said, not counted silently.
    if (sent === null) reportDeduped({ ...what, singletonKey });
    return sent;
  }
  async function within(
    db: PgBossDbLike,
    name: string,
    data?: object,
    sendOptions?: PgBossSendOptionsLike,
  ): Promise<string | null> {
    if (typeof (db as Partial<PgBossDbLike> | null | undefined)?.executeSql !== 'function') {
      throw new TypeError(
        `Expected \`db\` to have an executeSql(text, values) method (pg-boss's \`db\` option), got \`${typeName(db)}\``,
      );
    }
    const { options, what, singletonKey } = optionsFor(name, data, sendOptions);
    // Once, at once, on the app's connection: a failed statement has aborted its transaction anyway, and
    // the caller's transaction decides whether the job exists.
    const sent = await boss.send(name, data ?? {}, { ...options, db });
    if (sent === null) reportDeduped({ ...what, singletonKey });
    return sent;
  }
  // The options are the installed major's `SendOptions`, of which only `id` and `singletonKey` are read here.
  return Object.assign(rainchecked(sendToPgBoss), { within }) as unknown as PgBossHandOff<B>;
}
