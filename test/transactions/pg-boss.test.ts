// koa-raincheck/pg-boss's hand-off inside the app's transaction, `toBoss.within(db, name, data)`, against
// real PostgreSQL on every pg-boss major this Node runs: the job is written by the commit that writes the
// order, so a crash right after the commit still leaves it, and a rollback leaves none. pg-boss 10 and 11
// take a `db` written by hand (`{ executeSql }` over a node-postgres client); pg-boss 12 also ships
// converters, tested here with knex, Kysely and Drizzle.

import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import http from 'node:http';
import Router from '@koa/router';
import { expect } from 'chai';
import type { Knex } from 'knex';
import Koa from 'koa';
import pg from 'pg';
import request from 'supertest';
import { type PgBossDbLike, pgBoss } from '../../src/adapters/pg-boss.js';
import { raincheck } from '../../src/index.js';
import { majorsForThisNode } from '../adapters/majors.js';
import { pgBossMajors, type TestBoss } from '../adapters/pg-boss-majors.js';
import { startChild } from '../child.js';
import { deferred } from '../helpers.js';
import { useServer, whenServer } from '../servers.js';
import type { DrizzleTx } from './drizzle-orders.js';
import { type Orders, runSchema, tablesIn } from './harness.js';
import type { Database, KyselyTx } from './kysely-orders.js';
import { type PgTx, pgOrders } from './pg-orders.js';

/** A library's orders, and the pg-boss `db` of one of its transactions. */
interface WithinLibrary<Tx> {
  readonly label: string;
  open(url: string, schema: string): Promise<{ orders: Orders<Tx>; dbOf(tx: Tx): PgBossDbLike }>;
}

/** node-postgres: pg-boss's `db` is one line over the transaction's client, for every major. */
const nodePostgres: WithinLibrary<PgTx> = {
  label: 'node-postgres (executeSql written by hand)',
  open: async (url, schema) => ({
    orders: pgOrders(url, schema),
    dbOf: ({ client }) => ({ executeSql: (text, values) => client.query(text, values) }),
  }),
};

/** A library whose transactions are only handed back to its own `dbOf`: their type need not be known. */
const erase = <Tx>(library: WithinLibrary<Tx>) => library as unknown as WithinLibrary<unknown>;

/**
 * The libraries with pg-boss 12's converters, from its main entry (pg-boss 10 and 11 have none), loaded only
 * where pg-boss 12 runs (Node 22.12 and later).
 */
const withConverters: ReadonlyArray<{ label: string; load: () => Promise<WithinLibrary<unknown>> }> = [
  {
    label: 'knex (fromKnex)',
    load: async () => {
      const { fromKnex } = await import('pg-boss');
      const { knexOrders } = await import('./knex-orders.js');
      return erase<Knex.Transaction>({
        label: 'knex',
        open: async (url, schema) => ({ orders: knexOrders(url, schema), dbOf: (trx) => fromKnex(trx) }),
      });
    },
  },
  {
    label: 'Kysely (fromKysely)',
    load: async () => {
      const { fromKysely } = await import('pg-boss');
      const { Kysely, PostgresDialect } = await import('kysely');
      const { kyselyOrders } = await import('./kysely-orders.js');
      return erase<KyselyTx>({
        label: 'Kysely',
        open: async (url, schema) => {
          const pool = new pg.Pool({ connectionString: url, max: 10 });
          const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) }).withSchema(schema);
          return { orders: kyselyOrders(db), dbOf: (tx) => fromKysely(tx.trx) };
        },
      });
    },
  },
  {
    label: 'Drizzle (fromDrizzle)',
    load: async () => {
      const { fromDrizzle } = await import('pg-boss');
      const { drizzle } = await import('drizzle-orm/node-postgres');
      const { sql } = await import('drizzle-orm');
      const { drizzleOrders } = await import('./drizzle-orders.js');
      return erase<DrizzleTx>({
        label: 'Drizzle',
        open: async (url, schema) => {
          const pool = new pg.Pool({ connectionString: url, max: 10 });
          const orders = drizzleOrders(drizzle({ client: pool }), schema, () => pool.end());
          // DrizzleTx is typed for any driver, whose results are `unknown`; this one's are node-postgres's.
          return { orders, dbOf: (tx) => fromDrizzle(tx as Parameters<typeof fromDrizzle>[0], sql) };
        },
      });
    },
  },
];

/** Resolves once `count` backends of the database wait for a lock: a transaction that blocks another. */
async function waitingForALock(pool: pg.Pool, count: number): Promise<void> {
  const deadline = Date.now() + 10_000; // a failure, rather than the test's timeout
  for (;;) {
    if (Date.now() > deadline) throw new Error(`no ${count} backends waited for a lock within 10 s`);
    const { rows } = await pool.query<{ n: number }>(
      "select count(*)::int as n from pg_stat_activity where wait_event_type = 'Lock' and datname = current_database()",
    );
    if ((rows[0]?.n ?? 0) >= count) return;
    await new Promise((resolve) => setImmediate(resolve));
  }
}

whenServer('postgres', 'the pg-boss hand-off inside a transaction', () => {
  describe('koa-raincheck/pg-boss: toBoss.within(db, name, data), inside the transaction', function () {
    this.timeout(60_000);
    const run = randomUUID().slice(0, 8);
    const cleanups: Array<() => Promise<void>> = [];
    after(async () => {
      for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
    }); // before useServer's, which closes the server's proxy
    const postgres = useServer('postgres');
    let n = 0;

    for (const major of majorsForThisNode(pgBossMajors)) {
      describe(`with ${major.label}`, () => {
        const bossSchema = `raincheck_within_${major.module.replace(/\W/g, '_')}_${run}`;
        let test: TestBoss | undefined;
        let queue = '';
        const boss = () => test as TestBoss;

        before(async () => {
          test = await major.open(postgres().url, bossSchema);
          const opened = test;
          cleanups.push(() => opened.dropSchemaAndStop());
        });
        beforeEach(async () => {
          queue = `orders_${++n}`;
          await boss().createQueue(queue);
        });

        const libraries = [
          { label: nodePostgres.label, load: async () => erase(nodePostgres) },
          ...(major.module === 'pg-boss' ? withConverters : []),
        ];
        for (const { label, load } of libraries) {
          it(`writes the job in the commit that writes the order, and none for a rollback answered 200, with ${label}`, async () => {
            const schema = runSchema('within');
            const { orders, dbOf } = await (await load()).open(postgres().url, schema);
            cleanups.push(async () => {
              await orders.exec(`drop schema if exists ${schema} cascade`);
              await orders.close();
            });
            await orders.exec(tablesIn(schema));
            await orders.exec(`insert into ${schema}.stock values ('book', 10), ('sold-out', 0)`);
            const toBoss = pgBoss(boss().boss);
            const rc = raincheck();
            const router = new Router();
            router.post('/orders/:id', async (ctx) => {
              const id = ctx.params.id as string;
              try {
                const [jobId, seenOutside] = await orders.transaction(async (tx) => {
                  await orders.insertOrder(tx, id, String(ctx.query.sku));
                  const jobId = await toBoss.within(dbOf(tx), queue, { id });
                  const seenOutside = await boss().queued(queue); // from pg-boss's own pool
                  await orders.takeStock(tx, String(ctx.query.sku));
                  return [jobId, seenOutside];
                });
                ctx.body = { jobId, seenOutside };
              } catch {
                ctx.body = { rolledBack: true };
              }
            });
            const app = new Koa();
            app.use(rc);
            app.use(router.routes());
            const { body } = await request(app.callback()).post('/orders/o1?sku=book').expect(200);
            expect(body.seenOutside, 'the job is not visible before the commit').to.equal(0);
            expect(await boss().queued(queue)).to.equal(1);
            expect(await boss().dataOf(queue, body.jobId)).to.deep.equal({ id: 'o1' });
            await request(app.callback()).post('/orders/o2?sku=sold-out').expect(200, { rolledBack: true });
            expect(await boss().queued(queue)).to.equal(1);
            expect(await orders.orderIds()).to.deep.equal(['o1']);
            await rc.onIdle();
            expect(rc.stats.scheduled, 'nothing was left for after the response').to.equal(0);
          });
        }

        it('leaves exactly one job after a kill -9 right after the commit (the after-response hand-off, none)', async () => {
          const schema = runSchema('within crash');
          const pool = new pg.Pool({ connectionString: postgres().url, max: 2 });
          cleanups.push(async () => {
            await pool.query(`drop schema if exists ${schema} cascade`);
            await pool.end();
          });
          await pool.query(tablesIn(schema));
          const server = await startChild('pg-boss-within-crash.ts', {
            PG_BOSS_MODULE: major.module,
            PG_BOSS_SCHEMA: bossSchema,
            ORDERS_SCHEMA: schema,
            QUEUE: queue,
            DATABASE_URL: postgres().url,
          });
          const post = (path: string) =>
            http
              .request({ port: server.port, host: '127.0.0.1', method: 'POST', path })
              .on('error', () => {}) // the process dies before it answers
              .end();
          post('/orders/after-response?how=after');
          await server.printed('committed after-response');
          post('/orders/within?how=within');
          await server.printed('committed within');
          const exited = once(server.child, 'exit');
          server.child.kill('SIGKILL');
          const [code, signal] = await exited;
          expect([code, signal]).to.deep.equal([null, 'SIGKILL']);
          const { rows } = await pool.query<{ id: string }>(`select id from ${schema}.orders order by id`);
          expect(rows.map((row) => row.id)).to.deep.equal(['after-response', 'within']);
          expect(await boss().queued(queue)).to.equal(1);
          const { rows: jobs } = await pool.query<{ data: unknown }>(
            `select data from ${bossSchema}.job where name = $1`,
            [queue],
          );
          expect(jobs.map((job) => job.data)).to.deep.equal([{ id: 'within' }]);
        });

        it('dedupes across requests: an identical send waits for the first transaction, then adds none if it committed, one if it rolled back', async () => {
          const shortQueue = `${queue}_short`;
          await boss().createQueue(shortQueue, 'short');
          const pool = new pg.Pool({ connectionString: postgres().url, max: 4 });
          cleanups.push(() => pool.end());
          const toBoss = pgBoss(boss().boss, { dedupeAcrossRequests: true });
          const transaction = async (day: string, end: Promise<'commit' | 'rollback'>, sent?: () => void) => {
            const client = await pool.connect();
            try {
              await client.query('BEGIN');
              const db: PgBossDbLike = { executeSql: (text, values) => client.query(text, values) };
              const id = await toBoss.within(db, shortQueue, { day });
              sent?.();
              await client.query((await end) === 'commit' ? 'COMMIT' : 'ROLLBACK');
              return id;
            } finally {
              client.release();
            }
          };
          for (const [i, first] of (['rollback', 'commit'] as const).entries()) {
            const day = `2026-12-0${i + 1}`; // a job of its own each time
            const firstSent = deferred();
            const firstEnds = deferred<'commit' | 'rollback'>();
            const one = transaction(day, firstEnds.promise, firstSent.resolve);
            await firstSent.promise;
            const two = transaction(day, Promise.resolve('commit'));
            try {
              await waitingForALock(pool, 1); // the second insert waits on the unique index for the first
            } finally {
              firstEnds.resolve(first);
            }
            const [idOne, idTwo] = await Promise.all([one, two]);
            expect(idOne).to.be.a('string');
            // Rolled back: the second one adds the job. Committed: the queue holds it, the second adds none.
            if (first === 'rollback') expect(idTwo).to.be.a('string');
            else expect(idTwo).to.equal(null);
            expect(await boss().queued(shortQueue)).to.equal(i + 1);
          }
        });

        it('rejects a db that is not one, naming what it takes', async () => {
          const toBoss = pgBoss(boss().boss);
          let error: unknown;
          await toBoss.within({} as PgBossDbLike, queue, {}).catch((caught: unknown) => {
            error = caught;
          });
          expect(error).to.be.instanceOf(TypeError);
          expect((error as Error).message).to.equal(
            "Expected `db` to have an executeSql(text, values) method (pg-boss's `db` option), got `object`",
          );
        });
      });
    }
  });
});
