// knex over HTTP: the cases of harness.ts, on the orders of knex-orders.ts.
import type { Knex } from 'knex';
import { describeTransactions } from './harness.js';
import { knexOrders } from './knex-orders.js';

describeTransactions<Knex.Transaction>({
  label: 'knex',
  open: async (url, schema) => knexOrders(url, schema),
});
