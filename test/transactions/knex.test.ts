// knex: `atomic(() => knex.transaction(cb))`, savepoints as `trx.transaction(cb)` (knex nests a
// transaction as a savepoint). The cases are in harness.ts.
import knex, { type Knex } from 'knex';
import { atomic } from '../../src/index.js';
import { describeTransactions } from './harness.js';

describeTransactions<Knex.Transaction>({
  label: 'knex',
  open: async (url, schema) => {
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
  },
});
