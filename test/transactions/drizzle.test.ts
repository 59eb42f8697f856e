// Drizzle over node-postgres: `atomic(() => db.transaction(cb))`, savepoints as `tx.transaction(cb)`, and
// Drizzle's own `tx.rollback()`. The cases are in harness.ts, the orders in drizzle-orders.ts.

import { expect } from 'chai';
import { drizzle } from 'drizzle-orm/node-postgres';
import pg from 'pg';
import { atomic } from '../../src/index.js';
import { type DrizzleTx, drizzleOrders, drizzleTables } from './drizzle-orders.js';
import { describeTransactions } from './harness.js';

let db: ReturnType<typeof drizzle> | undefined;

describeTransactions<DrizzleTx>(
  {
    label: 'Drizzle',
    open: async (url, schema) => {
      const pool = new pg.Pool({ connectionString: url, max: 10 });
      db = drizzle({ client: pool });
      return drizzleOrders(db, schema, () => pool.end());
    },
  },
  (context) => {
    it("drops the job of a transaction ended by Drizzle's tx.rollback()", async () => {
      const { orders } = drizzleTables(context().schema);
      const drizzleDb = db as ReturnType<typeof drizzle>;
      const { post, rc, confirmed, drops } = await context().start((router, sendConfirmation) => {
        router.post('/refund/:id', async (ctx) => {
          const id = ctx.params.id as string;
          try {
            await atomic(() =>
              drizzleDb.transaction(async (tx) => {
                await tx.insert(orders).values({ id, sku: 'book' });
                ctx.raincheck(sendConfirmation, id);
                if (ctx.query.cancel !== undefined) tx.rollback(); // throws: the transaction rolls back
              }),
            );
            ctx.body = 'committed';
          } catch {
            ctx.body = 'rolled back';
          }
        });
      });
      await post('/refund/r1').expect(200, 'committed');
      await post('/refund/r2?cancel').expect(200, 'rolled back');
      await rc.onIdle();
      expect(confirmed).to.deep.equal([{ id: 'r1', found: true }]);
      expect(drops).to.deep.equal([{ id: 'r2', reason: 'rolledBack' }]);
      expect(await context().orders.orderIds()).to.deep.equal(['r1']);
    });
  },
);
