// The cases' orders on node-postgres, with BEGIN/COMMIT written by hand: a RaincheckTransaction around them,
// and savepoints (SAVEPOINT / RELEASE / ROLLBACK TO) each with a RaincheckTransaction made inside the outer
// one's run(), which nests it.
import pg from 'pg';
import { RaincheckTransaction } from '../../src/index.js';
import type { Orders } from './harness.js';

/** A client in a transaction, and how many savepoints deep. */
export interface PgTx {
  readonly client: pg.PoolClient;
  readonly depth: number;
}

/** `fn` between BEGIN and COMMIT (ROLLBACK when it throws), its jobs in a RaincheckTransaction. */
async function transaction<T>(pool: pg.Pool, fn: (tx: PgTx) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const scope = new RaincheckTransaction();
    try {
      const result = await scope.run(() => fn({ client, depth: 0 }));
      await client.query('COMMIT');
      scope.commit();
      return result;
    } catch (error) {
      await client.query('ROLLBACK');
      scope.rollback();
      throw error;
    }
  } finally {
    client.release();
  }
}

/** `fn` in a savepoint of `tx`: made inside the outer scope's run(), its scope is nested in it. */
async function savepoint<T>(tx: PgTx, fn: (sp: PgTx) => Promise<T>): Promise<T> {
  const name = `sp_${tx.depth + 1}`;
  await tx.client.query(`SAVEPOINT ${name}`);
  const scope = new RaincheckTransaction();
  try {
    const result = await scope.run(() => fn({ client: tx.client, depth: tx.depth + 1 }));
    await tx.client.query(`RELEASE SAVEPOINT ${name}`);
    scope.commit();
    return result;
  } catch (error) {
    await tx.client.query(`ROLLBACK TO SAVEPOINT ${name}`);
    scope.rollback();
    throw error;
  }
}

export function pgOrders(url: string, schema: string): Orders<PgTx> {
  const pool = new pg.Pool({ connectionString: url, max: 10 });
  return {
    transaction: (fn) => transaction(pool, fn),
    savepoint,
    insertOrder: async ({ client }, id, sku) => {
      await client.query(`insert into ${schema}.orders (id, sku) values ($1, $2)`, [id, sku]);
    },
    takeStock: async ({ client }, sku) => {
      await client.query(`update ${schema}.stock set count = count - 1 where sku = $1`, [sku]);
    },
    orderIds: async () =>
      (await pool.query<{ id: string }>(`select id from ${schema}.orders order by id`)).rows.map(
        (row) => row.id,
      ),
    exec: async (sql) => {
      await pool.query(sql);
    },
    close: () => pool.end(),
  };
}
