import { expect } from 'chai';
import PgBoss from 'pg-boss';
import request from 'supertest';
import { pgBoss, RaincheckEnqueueError } from '../../src/adapters/pg-boss.js';
import { RaincheckJobError } from '../../src/index.js';
import { getAll, startChild } from '../child.js';
import { appWith, deferred } from '../helpers.js';
import { type PostgresServer, startPostgres } from '../servers.js';

describe('koa-raincheck/pg-boss: pgBoss(boss, options)', function () {
  this.timeout(60_000);
  let postgres: PostgresServer;
  let boss: PgBoss;
  let queue: string;
  let n = 0;

  before(async () => {
    postgres = await startPostgres();
    boss = new PgBoss({ connectionString: postgres.url, supervise: false, schedule: false });
    boss.on('error', () => {});
    await boss.start();
  });
  after(async () => {
    await boss.stop({ graceful: false, wait: true }).catch(() => {});
    await postgres.close();
  });
  beforeEach(async () => {
    queue = `test_${++n}`;
    await boss.createQueue(queue);
  });

  it('sends exactly one job after a successful response, and a worker consumes it', async () => {
    const { app, rc, errors } = appWith();
    const toBoss = pgBoss(boss);
    app.use(async (ctx) => {
      ctx.raincheck(toBoss, queue, { to: 'ann@example.com' });
      ctx.raincheck(toBoss, queue, { to: 'ann@example.com' }); // the same call: collapsed
      ctx.status = 201;
    });
    await request(app.callback()).post('/signup').expect(201);
    await rc.onIdle();
    expect(await boss.getQueueSize(queue)).to.equal(1);
    const consumed = deferred<unknown>();
    await boss.work(queue, { pollingIntervalSeconds: 0.5 }, async ([job]) => consumed.resolve(job?.data));
    expect(await consumed.promise).to.deep.equal({ to: 'ann@example.com' });
    await boss.offWork(queue);
    expect(errors).to.deep.equal([]);
  });

  it('sends nothing for a failed request', async () => {
    const { app, rc } = appWith({ onDrop: () => {} });
    const toBoss = pgBoss(boss);
    app.use(async (ctx) => {
      ctx.raincheck(toBoss, queue, { to: 'ann@example.com' });
      ctx.throw(500);
    });
    await request(app.callback()).post('/signup').expect(500);
    await rc.onIdle();
    expect(await boss.getQueueSize(queue)).to.equal(0);
  });

  it('sends one job for two requests with the same job when deduping across requests (a short-policy queue)', async () => {
    const shortQueue = `${queue}_short`;
    await boss.createQueue(shortQueue, { name: shortQueue, policy: 'short' });
    const { app, rc } = appWith();
    const deduping = pgBoss(boss, { dedupeAcrossRequests: true });
    const plain = pgBoss(boss);
    app.use(async (ctx) => {
      ctx.raincheck(ctx.query.plain ? plain : deduping, ctx.query.plain ? queue : shortQueue, {
        day: '2026-11-23',
      });
      ctx.body = 'ok';
    });
    await request(app.callback()).get('/');
    await request(app.callback()).get('/');
    await rc.onIdle();
    expect(await boss.getQueueSize(shortQueue)).to.equal(1);
    await request(app.callback()).get('/?plain=1');
    await request(app.callback()).get('/?plain=1');
    await rc.onIdle();
    expect(await boss.getQueueSize(queue)).to.equal(2);
  });

  it('reports failed attempts while PostgreSQL is down, never to the client, and sends once it is back', async () => {
    const { app, rc, errors, firstError } = appWith();
    const toBoss = pgBoss(boss, { attempts: 60, backoff: 50, attemptTimeout: 1000 });
    app.use(async (ctx) => {
      ctx.raincheck(toBoss, queue, { order: 42 });
      ctx.body = 'ordered';
    });
    await postgres.stop();
    await request(app.callback()).post('/order').expect(200, 'ordered');
    await firstError;
    await postgres.start();
    await rc.onIdle();
    const reported = errors.map(({ error }) => error as RaincheckJobError);
    expect(reported.length).to.be.greaterThan(0);
    for (const error of reported) {
      expect(error).to.be.instanceOf(RaincheckJobError);
      expect(error.cause).to.be.instanceOf(RaincheckEnqueueError);
      expect(error.message).to.match(
        /could not add job test_\d+ to queue test_\d+ \(attempt \d+ of 60, retrying\).*data: \{"order":42\}/,
      );
    }
    expect(rc.stats).to.include({ succeeded: 1, failed: 0 });
    expect(await boss.getQueueSize(queue)).to.equal(1);
  });

  it('throws a TypeError for a boss that is not one', () => {
    expect(() => pgBoss({} as PgBoss)).to.throw(
      TypeError,
      'Expected `boss` to be a PgBoss instance, got `object`',
    );
  });

  it('drains pending sends on SIGTERM in a real child process', async () => {
    const server = await startChild('pg-boss-shutdown.ts', { QUEUE: queue, DATABASE_URL: postgres.url });
    await postgres.stop(); // the sends cannot get through: they are pending when SIGTERM comes
    await getAll(server.port, 20, (id) => `/?id=${id}`);
    const exited = server.terminate();
    await server.printed('draining');
    await postgres.start();
    const code = await exited;
    expect(server.out()).to.match(/draining 20\n/);
    expect(code).to.equal(0);
    expect(await boss.getQueueSize(queue)).to.equal(20);
  });
});
