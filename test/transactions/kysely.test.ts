// Kysely over node-postgres: controlled transactions with savepoints for the cases of harness.ts (see
// kysely-orders.ts), and the callback form, `db.transaction().execute(cb)`, which has no savepoints, below.
import { expect } from 'chai';
import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import { atomic } from '../../src/index.js';
import { describeTransactions } from './harness.js';
import { type Database, type KyselyTx, kyselyOrders } from './kysely-orders.js';

let db: Kysely<Database> | undefined;

describeTransactions<KyselyTx>(
  {
    label: 'Kysely',
    module: 'kysely',
    open: async (url, schema) => {
      db = new Kysely<Database>({
        dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: url, max: 10 }) }),
      }).withSchema(schema);
      return kyselyOrders(db);
    },
  },
  (context) => {
    it('drops the job of a rolled-back db.transaction().execute(cb), the callback form, and runs a committed one', async () => {
      const kysely = db as Kysely<Database>;
      const { post, rc, confirmed, drops } = await context().start((router, sendConfirmation) => {
        // No savepoint in this form: `trx.savepoint()` is on controlled transactions only.
        router.post('/callback/:id', async (ctx) => {
          const id = ctx.params.id as string;
          try {
            await atomic(() =>
              kysely.transaction().execute(async (trx) => {
                await trx.insertInto('orders').values({ id, sku: 'book' }).execute();
                ctx.raincheck(sendConfirmation, id);
                if (id === 'twice') await trx.insertInto('orders').values({ id, sku: 'book' }).execute();
              }),
            );
            ctx.body = 'committed';
          } catch {
            ctx.body = 'rolled back';
          }
        });
      });
      await post('/callback/once').expect(200, 'committed');
      await post('/callback/twice').expect(200, 'rolled back'); // a duplicate key: rolled back
      await rc.onIdle();
      expect(confirmed).to.deep.equal([{ id: 'once', found: true }]);
      expect(drops).to.deep.equal([{ id: 'twice', reason: 'rolledBack' }]);
      expect(await context().orders.orderIds()).to.deep.equal(['once']);
    });
  },
);
