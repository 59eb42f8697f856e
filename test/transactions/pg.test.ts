// node-postgres over HTTP, BEGIN/COMMIT and SAVEPOINT written by hand: the cases of harness.ts, on the
// orders of pg-orders.ts.
import { describeTransactions } from './harness.js';
import { type PgTx, pgOrders } from './pg-orders.js';

describeTransactions<PgTx>({
  label: 'node-postgres',
  open: async (url, schema) => pgOrders(url, schema),
});
