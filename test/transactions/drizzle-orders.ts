// The cases' orders on Drizzle, over any of its PostgreSQL drivers (node-postgres in drizzle.test.ts, PGlite
// in pglite.test.ts): `atomic(() => db.transaction(cb))`, savepoints as `tx.transaction(cb)` (Drizzle nests a
// transaction as a savepoint).
import { asc, type ExtractTablesWithRelations, eq, sql } from 'drizzle-orm';
import {
  integer,
  type PgDatabase,
  type PgQueryResultHKT,
  type PgTransaction,
  pgSchema,
  text,
} from 'drizzle-orm/pg-core';
import { atomic } from '../../src/index.js';
import type { Orders } from './harness.js';

/** What `drizzle()` returns is typed with this schema when none is given. */
type NoSchema = Record<string, unknown>;
export type DrizzleTx = PgTransaction<PgQueryResultHKT, NoSchema, ExtractTablesWithRelations<NoSchema>>;

/** The tables of `schema`, as Drizzle declares them. */
export function drizzleTables(schema: string) {
  const s = pgSchema(schema);
  return {
    orders: s.table('orders', { id: text().primaryKey(), sku: text().notNull() }),
    stock: s.table('stock', { sku: text().primaryKey(), count: integer().notNull() }),
  };
}

export function drizzleOrders(
  db: PgDatabase<PgQueryResultHKT, NoSchema>,
  schema: string,
  close: () => Promise<void>,
): Orders<DrizzleTx> {
  const { orders, stock } = drizzleTables(schema);
  return {
    transaction: (fn) => atomic(() => db.transaction(fn)),
    savepoint: (tx, fn) => atomic(() => tx.transaction(fn)),
    insertOrder: async (tx, id, sku) => {
      await tx.insert(orders).values({ id, sku });
    },
    takeStock: async (tx, sku) => {
      await tx
        .update(stock)
        .set({ count: sql`${stock.count} - 1` })
        .where(eq(stock.sku, sku));
    },
    orderIds: async () =>
      (await db.select({ id: orders.id }).from(orders).orderBy(asc(orders.id))).map((row) => row.id),
    exec: async (statements) => {
      for (const statement of statements.split(';').filter((s) => s.trim() !== ''))
        await db.execute(sql.raw(statement));
    },
    close,
  };
}
