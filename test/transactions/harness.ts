// The cases of issue 22, point 5, written once and run against each database library by
// test/transactions/<library>.test.ts: a Koa app with @koa/router, over real HTTP, whose handlers write
// orders in the library's own transactions and schedule `sendConfirmation(orderId)` inside them. The job
// reads the order back through a connection of its own, outside the transaction: it records whether the
// row was there, so that a job that ran for a rolled-back (or not yet committed) order is seen, and every
// test compares the jobs that ran with the rows the database holds.
//
// A rollback is a real one: an order of the `sold-out` sku makes `takeStock()` violate the stock table's
// `check (count >= 0)`, PostgreSQL fails the statement, and the library rolls the transaction back.
import { randomUUID } from 'node:crypto';
import Router from '@koa/router';
import { expect } from 'chai';
import Koa from 'koa';
import request from 'supertest';
import { type DropReason, type Job, type RaincheckMiddleware, raincheck } from '../../src/index.js';
import { enginesOf, nodeSatisfies } from '../adapters/majors.js';
import { deferred, listen } from '../helpers.js';
import { useServer, whenServer } from '../servers.js';

/** A database library's transactions, as the cases use them; `Tx` is its transaction (or savepoint). */
export interface Orders<Tx> {
  /**
   * Runs `fn` in a transaction of the library, inside a raincheck scope (`atomic()` around the library's
   * callback, or a `RaincheckTransaction` around `BEGIN`/`COMMIT`): resolves once committed, rejects once
   * rolled back.
   */
  transaction<T>(fn: (tx: Tx) => Promise<T>): Promise<T>;
  /** The same, nested in `tx`: a savepoint, released or rolled back to, inside a nested scope. */
  savepoint<T>(tx: Tx, fn: (sp: Tx) => Promise<T>): Promise<T>;
  insertOrder(tx: Tx, id: string, sku: string): Promise<void>;
  /** One item of `sku` out of stock: fails (`check (count >= 0)`) for `sold-out`. */
  takeStock(tx: Tx, sku: string): Promise<void>;
  /** The ids of the committed orders, in order, read outside any transaction. */
  orderIds(): Promise<string[]>;
  /** Runs statements outside any transaction (the tables' set-up). */
  exec(sql: string): Promise<void>;
  close(): Promise<void>;
}

/** How a library is opened on a server (or embedded, without one) for a schema of the run's own. */
export interface Library<Tx> {
  /** As the tests' titles say it: `knex`. */
  readonly label: string;
  /** The package whose `engines.node` says where it runs (the suite is not registered elsewhere). */
  readonly module?: string;
  /** `false` for an embedded database (PGlite): no server, one connection. @default true */
  readonly server?: boolean;
  open(url: string, schema: string): Promise<Orders<Tx>>;
}

/** The statements that make the tables in `schema`: orders, and the stock they take from. */
export function tablesIn(schema: string): string {
  return `create schema if not exists ${schema};
create table ${schema}.orders (id text primary key, sku text not null);
create table ${schema}.stock (sku text primary key, count integer not null check (count >= 0));`;
}

/** Only the run's own schema is touched: a shared server (DATABASE_URL) may hold others. */
export function runSchema(label: string): string {
  return `raincheck_tx_${label.toLowerCase().replace(/\W/g, '_')}_${randomUUID().slice(0, 8)}`;
}

/** The transactions at once in the concurrency case; every library's pool holds at least 10 connections. */
const CONCURRENT = 8;
/** The requests at once in the queued case: more than any library's pool of 10 connections. */
const QUEUED = 30;

/** What a test sees of the app: its middleware, the jobs that ran and the drops. */
export interface OrdersApp {
  readonly app: Koa;
  readonly rc: RaincheckMiddleware;
  /** Each confirmation job that ran, with whether it found its order committed. */
  readonly confirmed: Array<{ id: string; found: boolean }>;
  readonly drops: Array<{ id: string; reason: DropReason }>;
  /** The job of each order scheduled by the `/open` route, by order id. */
  readonly jobs: Map<string, Job>;
  /** For `/open/:id`: resolved once its job is scheduled; its transaction then waits for `settle`. */
  readonly opened: Map<string, { scheduled: Promise<void>; settle: () => void }>;
}

/** Routes a library's own test adds, with the job to schedule. */
export type MoreRoutes = (router: Router, sendConfirmation: (id: string) => Promise<void>) => void;

/** The app of the cases, on `orders`, with `more` routes. */
export function ordersApp<Tx>(orders: Orders<Tx>, more?: MoreRoutes): OrdersApp {
  const confirmed: OrdersApp['confirmed'] = [];
  const drops: OrdersApp['drops'] = [];
  const jobs = new Map<string, Job>();
  const opened = new Map<string, { scheduled: Promise<void>; settle: () => void }>();
  const rc = raincheck({
    onDrop: (job, _outcome, _ctx, reason) => drops.push({ id: String(job.args[0]), reason }),
  });
  // The job: reads its order back outside the transaction, as a mailer's template would.
  async function sendConfirmation(id: string): Promise<void> {
    confirmed.push({ id, found: (await orders.orderIds()).includes(id) });
  }
  // The concurrency case's barrier: each transaction waits there until CONCURRENT have arrived.
  let arrived = 0;
  const allArrived = deferred();
  const arrive = () => {
    if (++arrived === CONCURRENT) allArrived.resolve();
    return allArrived.promise;
  };

  const router = new Router();
  // The handler: insert, schedule, take the stock (which fails for a sold-out sku). `?catch`
  // catches the rollback and answers 200 anyway; `?always` asks the job to run even for a failed request.
  router.post('/orders/:id', async (ctx) => {
    const id = ctx.params.id as string;
    const sku = String(ctx.query.sku ?? 'book');
    try {
      const held = await orders.transaction(async (tx) => {
        await orders.insertOrder(tx, id, sku);
        const call = ctx.raincheck(sendConfirmation, id);
        if (ctx.query.always !== undefined) call.always();
        const held = call.job.held; // inside the open transaction: held until it commits
        await orders.takeStock(tx, sku);
        return held;
      });
      ctx.status = 201;
      ctx.body = { held };
    } catch (error) {
      if (ctx.query.catch === undefined) throw error;
      ctx.body = { queued: false };
    }
  });
  // Savepoints: `${id}-a` in the transaction, `${id}-b` in a savepoint that rolls back (caught), `${id}-c`
  // in one that is released. `?fail` then rolls the whole transaction back.
  router.post('/nested/:id', async (ctx) => {
    const id = ctx.params.id as string;
    const order = async (tx: Tx, suffix: string, sku: string) => {
      await orders.insertOrder(tx, `${id}-${suffix}`, sku);
      ctx.raincheck(sendConfirmation, `${id}-${suffix}`);
      await orders.takeStock(tx, sku);
    };
    try {
      await orders.transaction(async (tx) => {
        await order(tx, 'a', 'book');
        await orders
          .savepoint(tx, (sp) => order(sp, 'b', 'sold-out'))
          .then(
            () => expect.fail('the sold-out savepoint committed'),
            () => {}, // rolled back to the savepoint: the transaction goes on
          );
        await orders.savepoint(tx, (sp) => order(sp, 'c', 'book'));
        if (ctx.query.fail !== undefined) await orders.takeStock(tx, 'sold-out');
      });
      ctx.body = { committed: true };
    } catch {
      ctx.body = { committed: false };
    }
  });
  // A transaction left open past the response: it commits (or, for a sold-out sku, rolls back) once the
  // test calls `settle`.
  router.post('/open/:id', async (ctx) => {
    const id = ctx.params.id as string;
    const sku = String(ctx.query.sku ?? 'book');
    const scheduled = deferred();
    const settle = deferred();
    opened.set(id, { scheduled: scheduled.promise, settle: () => settle.resolve() });
    void orders
      .transaction(async (tx) => {
        await orders.insertOrder(tx, id, sku);
        jobs.set(id, ctx.raincheck(sendConfirmation, id).job);
        scheduled.resolve();
        await settle.promise;
        await orders.takeStock(tx, sku);
      })
      .catch(() => scheduled.resolve()); // failed before it scheduled: the test fails, rather than hang
    ctx.status = 202;
  });
  // Many requests at once, each transaction open until all are (a barrier): odd ids roll back.
  router.post('/concurrent/:id', async (ctx) => {
    const id = Number(ctx.params.id);
    try {
      await orders.transaction(async (tx) => {
        await orders.insertOrder(tx, `c${id}`, id % 2 === 0 ? 'book' : 'sold-out');
        ctx.raincheck(sendConfirmation, `c${id}`);
        await arrive();
        await orders.takeStock(tx, id % 2 === 0 ? 'book' : 'sold-out');
      });
    } catch {}
    ctx.body = 'ok';
  });
  // As /concurrent, without the barrier: more requests than the pool has connections wait in its queue.
  router.post('/queued/:id', async (ctx) => {
    const id = Number(ctx.params.id);
    const sku = id % 2 === 0 ? 'book' : 'sold-out';
    try {
      await orders.transaction(async (tx) => {
        await orders.insertOrder(tx, `q${id}`, sku);
        ctx.raincheck(sendConfirmation, `q${id}`);
        await orders.takeStock(tx, sku);
      });
    } catch {}
    ctx.body = 'ok';
  });
  // No transaction: an order written elsewhere, a job scheduled outside any scope.
  router.post('/plain/:id', async (ctx) => {
    ctx.raincheck(sendConfirmation, ctx.params.id as string);
    ctx.body = 'ok';
  });

  more?.(router, sendConfirmation);
  const app = new Koa();
  app.silent = true; // the uncaught rollback's 500 is expected
  app.use(rc);
  app.use(router.routes());
  return { app, rc, confirmed, drops, jobs, opened };
}

/** What a library's own tests get. */
export interface Context<Tx> {
  readonly orders: Orders<Tx>;
  readonly url: string;
  readonly schema: string;
  /** The app with `more` routes, listening: `post(path)` requests it. */
  start(more?: MoreRoutes): Promise<OrdersApp & { post(path: string): request.Test }>;
}

/** Sorted, for comparisons that do not depend on the order jobs ran in. */
const sorted = <T extends { id: string }>(items: readonly T[]) =>
  [...items].sort((a, b) => a.id.localeCompare(b.id, 'en', { numeric: true }));

/**
 * Registers the cases for `library`: against the server of test/servers.ts (unless it is embedded), on a
 * schema of the run's own, dropped after.
 */
export function describeTransactions<Tx>(
  library: Library<Tx>,
  extra?: (context: () => Context<Tx>) => void,
): void {
  const { label } = library;
  if (library.module !== undefined) {
    const engines = enginesOf(library.module);
    if (!nodeSatisfies(engines)) {
      console.log(`not run on Node ${process.versions.node}: ${label} (needs Node ${engines})`);
      return;
    }
  }
  const register = () =>
    describe(`atomic() with ${label} transactions, over HTTP`, function () {
      this.timeout(60_000);
      const schema = runSchema(label);
      let orders: Orders<Tx> | undefined;
      // Registered before useServer's, so that it runs before the server's proxy is closed.
      after(async () => {
        if (orders === undefined) return; // its before hook failed
        if (library.server !== false) await orders.exec(`drop schema if exists ${schema} cascade`);
        await orders.close();
      });
      const postgres = library.server === false ? undefined : useServer('postgres');
      let url = '';
      const opened = () => orders as Orders<Tx>;

      before(async () => {
        url = postgres?.().url ?? '';
        orders = await library.open(url, schema);
        await orders.exec(tablesIn(schema));
      });
      beforeEach(async () => {
        await opened().exec(
          `truncate ${schema}.orders; delete from ${schema}.stock; ` +
            `insert into ${schema}.stock values ('book', 1000), ('sold-out', 0);`,
        );
      });

      /** The app, listening; `post(path)` requests it. */
      async function start(more?: MoreRoutes) {
        const made = ordersApp(opened(), more);
        const server = await listen(made.app);
        // Closed after the test, its transactions left open settled first, even when it failed before.
        closers.push(async () => {
          for (const { settle } of made.opened.values()) settle();
          await made.rc.onIdle();
          await server.close();
        });
        return { ...made, post: (path: string) => request(server.url).post(path) };
      }
      const closers: Array<() => Promise<void>> = [];
      afterEach(async () => {
        for (const close of closers.splice(0)) await close();
      });

      it('runs the job of a transaction that commits, after the commit, held until then', async () => {
        const { post, rc, confirmed, drops } = await start();
        await post('/orders/1').expect(201, { held: true });
        await rc.onIdle();
        expect(confirmed).to.deep.equal([{ id: '1', found: true }]);
        expect(drops).to.deep.equal([]);
        expect(await opened().orderIds()).to.deep.equal(['1']);
      });

      it('drops the job of a transaction that rolls back, even with .always() on a failed request', async () => {
        const { post, rc, confirmed, drops } = await start();
        await post('/orders/2?sku=sold-out&always').expect(500);
        await rc.onIdle();
        expect(confirmed).to.deep.equal([]);
        expect(drops).to.deep.equal([{ id: '2', reason: 'rolledBack' }]);
        expect(rc.stats).to.include({ scheduled: 1, succeeded: 0, dropped: 1 });
        expect(await opened().orderIds()).to.deep.equal([]);
      });

      it('drops the job of a rolled-back transaction that the handler catches and answers 200 for', async () => {
        const { post, rc, confirmed, drops } = await start();
        await post('/orders/3?sku=sold-out&catch').expect(200, { queued: false });
        await post('/orders/4?catch').expect(201, { held: true });
        await rc.onIdle();
        expect(confirmed).to.deep.equal([{ id: '4', found: true }]);
        expect(drops).to.deep.equal([{ id: '3', reason: 'rolledBack' }]);
        expect(rc.stats).to.include({ scheduled: 2, succeeded: 1, dropped: 1 });
        expect(await opened().orderIds()).to.deep.equal(['4']);
      });

      it('nests like savepoints: a savepoint rolled back drops its job, the outer rollback drops all', async () => {
        const { post, rc, confirmed, drops } = await start();
        await post('/nested/5').expect(200, { committed: true });
        await rc.onIdle();
        expect(sorted(confirmed)).to.deep.equal([
          { id: '5-a', found: true },
          { id: '5-c', found: true },
        ]);
        expect(drops).to.deep.equal([{ id: '5-b', reason: 'rolledBack' }]);
        expect(await opened().orderIds()).to.deep.equal(['5-a', '5-c']);

        confirmed.length = 0;
        drops.length = 0;
        await post('/nested/6?fail').expect(200, { committed: false });
        await rc.onIdle();
        expect(confirmed).to.deep.equal([]);
        expect(sorted(drops)).to.deep.equal([
          { id: '6-a', reason: 'rolledBack' },
          { id: '6-b', reason: 'rolledBack' },
          { id: '6-c', reason: 'rolledBack' },
        ]);
        expect(await opened().orderIds()).to.deep.equal(['5-a', '5-c']);
      });

      if (library.server !== false) {
        it('holds the job of a transaction still open after the response; onIdle() and drain() wait for it', async () => {
          const { post, rc, confirmed, drops, jobs, opened: open } = await start();
          await post('/open/7').expect(202);
          await post('/open/8?sku=sold-out').expect(202);
          await open.get('7')?.scheduled;
          await open.get('8')?.scheduled;
          // The responses are over, the transactions open: both jobs wait, held, and are pending.
          expect([jobs.get('7')?.state, jobs.get('7')?.held]).to.deep.equal(['waiting', true]);
          expect([jobs.get('8')?.state, jobs.get('8')?.held]).to.deep.equal(['waiting', true]);
          expect(rc.pending).to.equal(2);
          const drained = await rc.drain({ timeout: 50 });
          expect(drained.drained).to.equal(false);
          expect(drained.unfinished.map((job) => job.args[0]).sort()).to.deep.equal(['7', '8']);
          let idle = false;
          const idled = rc.onIdle().then(() => {
            idle = true;
          });
          open.get('8')?.settle(); // rolls back: its job is dropped, 7's still held
          await new Promise((resolve) => setImmediate(resolve));
          expect(idle).to.equal(false);
          open.get('7')?.settle(); // commits
          await idled;
          expect(confirmed).to.deep.equal([{ id: '7', found: true }]);
          expect(drops).to.deep.equal([{ id: '8', reason: 'rolledBack' }]);
          expect(await opened().orderIds()).to.deep.equal(['7']);
        });

        it(`keeps concurrent requests apart: ${CONCURRENT} transactions open at once, half roll back, beside requests without one`, async () => {
          const { post, rc, confirmed, drops } = await start();
          await Promise.all([
            ...Array.from({ length: CONCURRENT }, (_, i) => post(`/concurrent/${i}`).expect(200)),
            ...Array.from({ length: 4 }, (_, i) => post(`/plain/p${i}`).expect(200)),
          ]);
          await rc.onIdle();
          const committed = Array.from({ length: CONCURRENT / 2 }, (_, i) => `c${2 * i}`);
          const rolledBack = Array.from({ length: CONCURRENT / 2 }, (_, i) => `c${2 * i + 1}`);
          const plain = ['p0', 'p1', 'p2', 'p3'].map((id) => ({ id, found: false }));
          expect(sorted(confirmed)).to.deep.equal(
            sorted([...committed.map((id) => ({ id, found: true })), ...plain]),
          );
          expect(sorted(drops)).to.deep.equal(rolledBack.map((id) => ({ id, reason: 'rolledBack' })));
          expect(await opened().orderIds()).to.have.members(committed);
          expect(rc.stats).to.include({ succeeded: CONCURRENT / 2 + 4, dropped: CONCURRENT / 2 });
        });

        it(`keeps ${QUEUED} requests apart when they wait for one of the pool's connections`, async () => {
          const { post, rc, confirmed, drops } = await start();
          await Promise.all(Array.from({ length: QUEUED }, (_, i) => post(`/queued/${i}`).expect(200)));
          await rc.onIdle();
          const ids = (parity: number) =>
            Array.from({ length: QUEUED / 2 }, (_, i) => `q${2 * i + parity}`).sort((a, b) =>
              a.localeCompare(b, 'en', { numeric: true }),
            );
          expect(sorted(confirmed)).to.deep.equal(ids(0).map((id) => ({ id, found: true })));
          expect(sorted(drops)).to.deep.equal(ids(1).map((id) => ({ id, reason: 'rolledBack' })));
          expect(await opened().orderIds()).to.have.members(ids(0));
        });
      }

      extra?.(() => ({ orders: opened(), url, schema, start }));
    });
  if (library.server === false) register();
  else whenServer('postgres', `the ${label} transaction suite`, register);
}
