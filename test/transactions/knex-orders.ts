// The cases' orders on knex: `atomic(() => knex.transaction(cb))`, savepoints as `trx.transaction(cb)`
// (knex nests a transaction as a savepoint).
import knex, { type Knex } from 'knex';
import { atomic } from '../../src/index.js';
import type { Orders } from './harness.js';

export function knexOrders(url: string, schema: string): Orders<Knex.Transaction> {
  const db = knex({ client: 'pg', connection: url, searchPath: [schema], pool: { min: 0, max: 10 } });
  return {
    transaction: (fn) => atomic(() => db.transaction(fn)),
    savepoint: (trx, fn) => atomic(() => trx.transaction(fn)),
    insertOrder: async (trx, id, sku) => {
      await trx('orders').insert({ id, sku });
    },
    takeStock: async (trx, sku) => {
      await trx('stock').decrement('count', 1).where({ sku });
    },
    orderIds: async () => (await db('orders').select('id').orderBy('id')).map((row) => row.id),
    exec: async (sql) => {
      await db.raw(sql);
    },
    close: () => db.destroy(),
  };
}
