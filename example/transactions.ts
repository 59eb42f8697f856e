// Jobs that follow the database transaction, with no database server: PGlite (PostgreSQL in WebAssembly)
// and Drizzle. `POST /orders?sku=` writes an order and takes it out of stock in one transaction, and
// schedules its confirmation inside it, under atomic(): the job runs after the response only if the
// transaction committed. A sold-out sku fails the stock's `check (count >= 0)`: the transaction rolls back,
// the handler catches it and still answers 200, and the confirmation is dropped (reason 'rolledBack').
//
// `npm run example` calls runTransactions() in its timeline; `tsx example/transactions.ts` runs it alone.
// In your own app, import from 'koa-raincheck' instead of '../src/index.js'.
import type { AddressInfo } from 'node:net';
import { pathToFileURL } from 'node:url';
import { PGlite } from '@electric-sql/pglite';
import { eq, sql } from 'drizzle-orm';
import { integer, pgTable, serial, text } from 'drizzle-orm/pg-core';
import { drizzle } from 'drizzle-orm/pglite';
import Koa from 'koa';
import { atomic, raincheck } from '../src/index.js';

const orders = pgTable('orders', { id: serial().primaryKey(), sku: text().notNull() });
const stock = pgTable('stock', { sku: text().primaryKey(), count: integer().notNull() });

/** Starts the orders app on PGlite, sends it an order that commits and one that rolls back, prints each step. */
export async function runTransactions(log: (line: string) => void): Promise<void> {
  const pglite = await PGlite.create();
  const db = drizzle({ client: pglite });
  await pglite.exec(`create table orders (id serial primary key, sku text not null);
create table stock (sku text primary key, count integer not null constraint in_stock check (count >= 0));
insert into stock values ('book', 10), ('poster', 0);`);

  // The job: reads the order back, outside the transaction, as a mailer's template would.
  async function sendConfirmation(orderId: number): Promise<void> {
    const [order] = await db.select().from(orders).where(eq(orders.id, orderId));
    log(
      `job     sendConfirmation(${orderId}) finished: order ${orderId} is ${order ? 'in' : 'NOT in'} the database`,
    );
  }

  const app = new Koa();
  const rc = raincheck({
    onDrop: (job, _outcome, _ctx, reason) => log(`dropped ${job.name}(${job.args.join(', ')}): ${reason}`),
  });
  app.use(rc);
  app.use(async (ctx) => {
    const sku = String(ctx.query.sku);
    try {
      const id = await atomic(() =>
        db.transaction(async (tx) => {
          const [order] = await tx.insert(orders).values({ sku }).returning();
          const id = (order as { id: number }).id;
          ctx.raincheck(sendConfirmation, id);
          log(
            `handler order ${id} (${sku}) inserted, sendConfirmation(${id}) scheduled inside the transaction`,
          );
          await tx
            .update(stock)
            .set({ count: sql`${stock.count} - 1` })
            .where(eq(stock.sku, sku)); // out of stock: violates in_stock, and the transaction rolls back
          return id;
        }),
      );
      log(`handler transaction committed: order ${id}`);
      ctx.body = { ordered: id };
    } catch (error) {
      const { cause } = error as Error; // Drizzle's error names the query; PostgreSQL's is its cause
      log(
        `handler transaction rolled back (${cause instanceof Error ? cause.message : error}); answering 200 anyway`,
      );
      ctx.body = { ordered: false };
    }
  });

  const server = app.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  for (const sku of ['book', 'poster']) {
    log(`client  POST /orders?sku=${sku}`);
    const response = await fetch(`${base}/orders?sku=${sku}`, { method: 'POST' });
    log(`client  got ${response.status} ${await response.text()}`);
    await rc.onIdle();
  }
  server.close();
  await pglite.close();
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const started = performance.now();
  const at = () => `${String(Math.round(performance.now() - started)).padStart(5)} ms`;
  console.log('koa-raincheck example: jobs that follow the database transaction (PGlite, Drizzle)\n');
  await runTransactions((line) => console.log(`${at()}  ${line}`));
  console.log('\nAll jobs settled; server closed.');
}
