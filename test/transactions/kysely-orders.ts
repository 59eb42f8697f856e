// The cases' orders on Kysely, over any of its PostgreSQL dialects (node-postgres in kysely.test.ts, PGlite
// in pglite.test.ts). Savepoints need Kysely's controlled transactions (`db.startTransaction()`,
// `trx.savepoint()`), so the transactions here are those, each inside atomic(): resolved after COMMIT (or
// RELEASE SAVEPOINT), rejected after ROLLBACK (or ROLLBACK TO SAVEPOINT).
import { type ControlledTransaction, type Kysely, sql } from 'kysely';
import { atomic } from '../../src/index.js';
import type { Orders } from './harness.js';

export interface Database {
  orders: { id: string; sku: string };
  stock: { sku: string; count: number };
}

/** A controlled transaction, and how many savepoints deep. */
export interface KyselyTx {
  readonly trx: ControlledTransaction<Database>;
  readonly depth: number;
}

/** `kysely` already has the schema (`withSchema()`). */
export function kyselyOrders(kysely: Kysely<Database>): Orders<KyselyTx> {
  return {
    transaction: (fn) =>
      atomic(async () => {
        const trx = await kysely.startTransaction().execute();
        try {
          const result = await fn({ trx, depth: 0 });
          await trx.commit().execute();
          return result;
        } catch (error) {
          await trx.rollback().execute();
          throw error;
        }
      }),
    savepoint: (tx, fn) =>
      atomic(async () => {
        const name = `sp_${tx.depth + 1}`;
        const sp = await tx.trx.savepoint(name).execute();
        try {
          // Typed with the savepoint's name, which the nested function need not know.
          const result = await fn({
            trx: sp as unknown as ControlledTransaction<Database>,
            depth: tx.depth + 1,
          });
          await sp.releaseSavepoint(name).execute();
          return result;
        } catch (error) {
          await sp.rollbackToSavepoint(name).execute();
          throw error;
        }
      }),
    insertOrder: async ({ trx }, id, sku) => {
      await trx.insertInto('orders').values({ id, sku }).execute();
    },
    takeStock: async ({ trx }, sku) => {
      await trx
        .updateTable('stock')
        .set((eb) => ({ count: eb('count', '-', 1) }))
        .where('sku', '=', sku)
        .execute();
    },
    orderIds: async () =>
      (await kysely.selectFrom('orders').select('id').orderBy('id').execute()).map((row) => row.id),
    exec: async (statements) => {
      // One at a time: PGlite prepares each, and a prepared statement holds one command.
      for (const statement of statements.split(';').filter((s) => s.trim() !== ''))
        await sql.raw(statement).execute(kysely);
    },
    close: () => kysely.destroy(),
  };
}
