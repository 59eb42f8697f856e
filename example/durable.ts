// Durable hand-off: the welcome email must not be lost, so the request hands it to a real queue after the
// response, and a worker sends it. Run it with `npm run example:durable` (BullMQ on Redis) or
// `npm run example:durable -- pg-boss` (pg-boss 12 on PostgreSQL; Node 22.12+). It uses REDIS_URL /
// DATABASE_URL when set (keys under the prefix `koa-raincheck-example`, the schema `koa_raincheck_example`),
// and otherwise starts a throwaway server of its own from the system's binaries (as the tests do).
// In your own app, import from 'koa-raincheck/bullmq' or 'koa-raincheck/pg-boss'.
import type { AddressInfo } from 'node:net';
import { Queue, Worker } from 'bullmq';
import Koa from 'koa';
import { PgBoss } from 'pg-boss';
import { bullmq } from '../src/adapters/bullmq.js';
import { pgBoss } from '../src/adapters/pg-boss.js';
import { raincheck } from '../src/index.js';
import { redisConnection, startPostgres, startRedis } from '../test/servers.js';

const started = performance.now();
const log = (line: string) =>
  console.log(`${String(Math.round(performance.now() - started)).padStart(5)} ms  ${line}`);
const kind = process.argv[2] === 'pg-boss' ? 'pg-boss' : 'bullmq';

interface Backend {
  /** The function to schedule: adds job `welcome` with `data` to the durable queue. */
  toQueue: (name: string, data: { to: string }) => Promise<unknown>;
  /** Starts a worker; resolves once it has handled `count` jobs. */
  work(count: number): Promise<void>;
  close(): Promise<void>;
}

async function bullmqBackend(): Promise<Backend> {
  const own = process.env.REDIS_URL ? undefined : await startRedis();
  const connection = redisConnection(process.env.REDIS_URL ?? (own?.url as string));
  const prefix = 'koa-raincheck-example';
  const queue = new Queue('emails', { connection, prefix });
  // Without a listener, a Redis outage is an unhandled 'error' event; the adapter retries adding jobs.
  queue.on('error', (error) => log(`queue error: ${error.message}`));
  await queue.obliterate({ force: true }); // a clean example queue
  return {
    toQueue: bullmq(queue, { dedupeAcrossRequests: true }),
    work: (count) =>
      new Promise((resolve) => {
        let done = 0;
        const worker: Worker = new Worker(
          'emails',
          async (job) => {
            log(`worker  sent "${job.name}" to ${job.data.to} (BullMQ job ${job.id})`);
            if (++done === count) setImmediate(() => worker.close().then(() => resolve()));
          },
          { connection, prefix },
        );
        worker.on('error', (error) => log(`worker error: ${error.message}`));
      }),
    close: async () => {
      await queue.obliterate({ force: true });
      await queue.close();
      await own?.close();
    },
  };
}

async function pgBossBackend(): Promise<Backend> {
  const own = process.env.DATABASE_URL ? undefined : await startPostgres();
  const boss = new PgBoss({
    connectionString: process.env.DATABASE_URL ?? (own?.url as string),
    schema: 'koa_raincheck_example',
  });
  // Without a listener, pg-boss's 'error' event crashes the process when PostgreSQL goes away.
  boss.on('error', (error) => log(`pg-boss error: ${error.message}`));
  await boss.start();
  await boss.deleteQueue('welcome').catch(() => {});
  await boss.createQueue('welcome', { policy: 'short' }); // one queued job per singletonKey
  return {
    toQueue: pgBoss(boss, { dedupeAcrossRequests: true }),
    work: async (count) => {
      let done = 0;
      const finished = new Promise<void>((resolve) => {
        void boss.work<{ to: string }>('welcome', { pollingIntervalSeconds: 0.5 }, async ([job]) => {
          log(`worker  sent "welcome" to ${job?.data.to} (pg-boss job ${job?.id})`);
          if (++done === count) resolve();
        });
      });
      await finished;
      await boss.offWork('welcome');
    },
    close: async () => {
      await boss.deleteQueue('welcome');
      await boss.stop({ graceful: false });
      await own?.close();
    },
  };
}

const backend = kind === 'pg-boss' ? await pgBossBackend() : await bullmqBackend();
log(`${kind}: queue ready`);

const app = new Koa();
app.on('error', (error: Error & { expose?: boolean }) => {
  if (!error.expose) log(`error   ${error.message}`);
});
const rc = raincheck({ onDrop: (job, outcome) => log(`dropped ${job.name}(): status ${outcome.status}`) });
app.use(rc);
app.use(async (ctx) => {
  const email = String(ctx.query.email ?? '');
  ctx.raincheck(backend.toQueue, 'welcome', { to: email });
  if (!email.includes('@')) ctx.throw(400, 'a valid email is required');
  ctx.status = 201;
});
const server = app.listen(0, '127.0.0.1');
await new Promise((resolve) => server.once('listening', resolve));
const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

for (const email of ['ann@example.com', 'ann@example.com', 'not-an-email', 'bob@example.com']) {
  const response = await fetch(`${base}/signup?email=${email}`, { method: 'POST' });
  log(`client  POST /signup?email=${email} → ${response.status}`);
}
await rc.drain({ timeout: 10_000 }); // every hand-off done
log('handler side done: 2 jobs handed over (Ann twice is one job across requests; the 400 handed none)');
await backend.work(2);
server.close();
await backend.close();
log('worker side done; servers closed.');
