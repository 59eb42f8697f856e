// The pg-boss majors the adapter supports, each behind the few operations the tests need, written against
// that major's own API and types: how it is imported (12: `{ PgBoss }`; 10, 11: default, `export =`), how
// a queue is created and how its queued jobs are counted differ between them.
import type { PgBossLike } from '../../src/adapters/pg-boss.js';
import type { Major } from './majors.js';

/** One pg-boss instance on its own schema, started. */
export interface TestBoss {
  /** What the adapter is given. */
  readonly boss: PgBossLike;
  createQueue(name: string, policy?: 'short'): Promise<void>;
  /** Jobs in the queue not yet taken by a worker, counted now. */
  queued(name: string): Promise<number>;
  /** The data of the job with this id in queue `name`, or `undefined` if it holds none. */
  dataOf(name: string, id: string): Promise<unknown>;
  /** Starts a worker that hands each job's data to `handle`. */
  work(name: string, handle: (data: unknown) => void): Promise<void>;
  offWork(name: string): Promise<void>;
  /** Stops it without waiting for workers; the schema stays. */
  stop(): Promise<void>;
  /** Drops its schema and stops it: for a run on a shared server. */
  dropSchemaAndStop(): Promise<void>;
}

export interface PgBossMajor extends Major {
  /** Starts an instance on `schema` (created if missing); connection errors are left to the adapter. */
  open(url: string, schema: string): Promise<TestBoss>;
}

// Polling at pg-boss's minimum keeps a worker test short.
const polling = { pollingIntervalSeconds: 0.5 };
const constructorOptions = (url: string, schema: string) => ({
  connectionString: url,
  schema,
  supervise: false,
  schedule: false,
});

interface Common {
  on(event: 'error', listener: (error: Error) => void): unknown;
  start(): Promise<unknown>;
  stop(options: { graceful: boolean; wait?: boolean }): Promise<void>;
  offWork(name: string): Promise<void>;
  getDb(): { executeSql(text: string, values: unknown[]): Promise<unknown> };
  getJobById(name: string, id: string): Promise<{ readonly data: unknown } | null>;
}

/** The operations every major spells the same way. */
async function common(
  boss: PgBossLike & Common,
  schema: string,
): Promise<Pick<TestBoss, 'boss' | 'dataOf' | 'offWork' | 'stop' | 'dropSchemaAndStop'>> {
  boss.on('error', () => {}); // connection errors while the server is cut: the adapter reports and retries
  await boss.start();
  const stop = () => boss.stop({ graceful: false, wait: true });
  return {
    boss,
    dataOf: async (name, id) => (await boss.getJobById(name, id))?.data,
    offWork: (name) => boss.offWork(name),
    stop,
    dropSchemaAndStop: async () => {
      await boss.getDb().executeSql(`DROP SCHEMA IF EXISTS ${schema} CASCADE`, []);
      await stop();
    },
  };
}

export const pgBossMajors: readonly PgBossMajor[] = [
  {
    label: 'pg-boss 12',
    module: 'pg-boss',
    open: async (url, schema) => {
      const { PgBoss } = await import('pg-boss');
      const boss = new PgBoss(constructorOptions(url, schema));
      return {
        ...(await common(boss, schema)),
        createQueue: (name, policy) => boss.createQueue(name, policy ? { policy } : {}),
        queued: async (name) => (await boss.findJobs(name, { queued: true })).length,
        work: async (name, handle) => {
          await boss.work(name, polling, async ([job]) => handle(job?.data));
        },
      };
    },
  },
  {
    label: 'pg-boss 11',
    module: 'pg-boss-11',
    open: async (url, schema) => {
      const { default: PgBoss } = await import('pg-boss-11');
      const boss = new PgBoss(constructorOptions(url, schema));
      return {
        ...(await common(boss, schema)),
        createQueue: (name, policy) => boss.createQueue(name, policy ? { policy } : {}),
        queued: async (name) => (await boss.getQueueStats(name)).queuedCount,
        work: async (name, handle) => {
          await boss.work(name, polling, async ([job]) => handle(job?.data));
        },
      };
    },
  },
  {
    label: 'pg-boss 10',
    module: 'pg-boss-10',
    open: async (url, schema) => {
      const { default: PgBoss } = await import('pg-boss-10');
      const boss = new PgBoss(constructorOptions(url, schema));
      return {
        ...(await common(boss, schema)),
        createQueue: (name, policy) => boss.createQueue(name, { name, ...(policy ? { policy } : {}) }),
        queued: (name) => boss.getQueueSize(name),
        work: async (name, handle) => {
          await boss.work(name, polling, async ([job]) => handle(job?.data));
        },
      };
    },
  },
];
