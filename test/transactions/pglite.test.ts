// PGlite (PostgreSQL in WebAssembly, no server): the cases of harness.ts that need no second connection,
// through Drizzle (drizzle-orm/pglite) and Kysely (its PGliteDialect). PGlite has one connection, so the
// transaction left open past the response and the concurrent ones are the server suites'.
import { PGlite } from '@electric-sql/pglite';
import { drizzle } from 'drizzle-orm/pglite';
import { Kysely, PGliteDialect } from 'kysely';
import { type DrizzleTx, drizzleOrders } from './drizzle-orders.js';
import { describeTransactions } from './harness.js';
import { type Database, type KyselyTx, kyselyOrders } from './kysely-orders.js';

describeTransactions<DrizzleTx>({
  label: 'Drizzle on PGlite',
  server: false,
  open: async (_url, schema) => {
    const pglite = await PGlite.create();
    return drizzleOrders(drizzle({ client: pglite }), schema, () => pglite.close());
  },
});

describeTransactions<KyselyTx>({
  label: 'Kysely on PGlite',
  module: 'kysely',
  server: false,
  open: async (_url, schema) => {
    const pglite = await PGlite.create();
    return kyselyOrders(new Kysely<Database>({ dialect: new PGliteDialect({ pglite }) }).withSchema(schema));
  },
});
