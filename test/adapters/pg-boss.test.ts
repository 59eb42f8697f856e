import { randomUUID } from 'node:crypto';
import diagnostics_channel from 'node:diagnostics_channel';
import { expect } from 'chai';
import request from 'supertest';
import { type PgBossLike, pgBoss, RaincheckEnqueueError } from '../../src/adapters/pg-boss.js';
import { RaincheckJobError } from '../../src/index.js';
import { getAll, startChild } from '../child.js';
import { appWith, deferred } from '../helpers.js';
import { useServer, whenServer } from '../servers.js';
import { majorsForThisNode } from './majors.js';
import { pgBossMajors, type TestBoss } from './pg-boss-majors.js';

whenServer('postgres', 'the koa-raincheck/pg-boss suite', () => {
  describe('koa-raincheck/pg-boss: pgBoss(boss, options)', function () {
    this.timeout(60_000);
    const postgres = useServer('postgres');
    const run = randomUUID().slice(0, 8);
    let n = 0;

    for (const major of majorsForThisNode(pgBossMajors)) {
      describe(`with ${major.label}`, () => {
        // A schema of this run's own, dropped after: a shared server (DATABASE_URL) may hold others.
        const schema = `raincheck_test_${major.module.replace(/\W/g, '_')}_${run}`;
        let test: TestBoss | undefined;
        let boss: PgBossLike;
        let queue: string;

        before(async () => {
          test = await major.open(postgres().url, schema);
          boss = test.boss;
        });
        after(async () => {
          if (test === undefined) return; // its before hook failed
          await postgres().restore();
          await test.dropSchemaAndStop();
        });
        beforeEach(async () => {
          await postgres().restore(); // after a test that failed while PostgreSQL was cut
          queue = `test_${++n}`;
          await test?.createQueue(queue);
        });
        const opened = () => test as TestBoss;

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
          expect(await opened().queued(queue)).to.equal(1);
          const consumed = deferred<unknown>();
          await opened().work(queue, consumed.resolve);
          expect(await consumed.promise).to.deep.equal({ to: 'ann@example.com' });
          await opened().offWork(queue);
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
          expect(await opened().queued(queue)).to.equal(0);
        });

        it('sends one job for two requests with the same job when deduping across requests (a short-policy queue)', async () => {
          const shortQueue = `${queue}_short`;
          await opened().createQueue(shortQueue, 'short');
          const { app, rc } = appWith();
          const deduping = pgBoss(boss, { dedupeAcrossRequests: true });
          const plain = pgBoss(boss);
          app.use(async (ctx) => {
            ctx.raincheck(ctx.query.plain ? plain : deduping, ctx.query.plain ? queue : shortQueue, {
              day: ctx.query.day ?? '2026-11-23',
            });
            ctx.body = 'ok';
          });
          await request(app.callback()).get('/');
          await request(app.callback()).get('/');
          await rc.onIdle();
          expect(await opened().queued(shortQueue)).to.equal(1);
          // Another job is another key: a short-policy queue also holds one job per missing key.
          await request(app.callback()).get('/?day=2026-11-24');
          await rc.onIdle();
          expect(await opened().queued(shortQueue)).to.equal(2);
          await request(app.callback()).get('/?plain=1');
          await request(app.callback()).get('/?plain=1');
          await rc.onIdle();
          expect(await opened().queued(queue)).to.equal(2);
        });

        it('says when pg-boss adds no job (send resolves null), on koa-raincheck:hand-off:deduped, and still succeeds', async () => {
          const shortQueue = `${queue}_short`;
          await opened().createQueue(shortQueue, 'short');
          const seen: Array<Record<string, unknown>> = [];
          const onDeduped = (message: unknown) => seen.push(message as Record<string, unknown>);
          diagnostics_channel.subscribe('koa-raincheck:hand-off:deduped', onDeduped);
          try {
            const { app, rc, errors } = appWith();
            const toBoss = pgBoss(boss, { dedupeAcrossRequests: true });
            app.use(async (ctx) => {
              ctx.raincheck(toBoss, shortQueue, { day: '2026-11-23' });
              ctx.body = 'ok';
            });
            await request(app.callback()).get('/').expect(200);
            await rc.onIdle();
            expect(seen, 'a job added').to.deep.equal([]);
            await request(app.callback()).get('/').expect(200); // the same job: the queue holds it already
            await rc.onIdle();
            expect(seen).to.have.length(1);
            expect(seen[0]).to.have.all.keys('queue', 'name', 'data', 'jobId', 'singletonKey');
            expect(seen[0]).to.deep.include({
              queue: shortQueue,
              name: shortQueue,
              data: { day: '2026-11-23' },
            });
            expect(seen[0]?.jobId).to.be.a('string');
            expect(seen[0]?.singletonKey).to.be.a('string');
            // The rule (docs/durable-queues.md): the queue did its dedupe; the hand-off did not fail.
            expect(rc.stats).to.include({ succeeded: 2, failed: 0 });
            expect(errors).to.deep.equal([]);
            expect(await opened().queued(shortQueue)).to.equal(1);
          } finally {
            diagnostics_channel.unsubscribe('koa-raincheck:hand-off:deduped', onDeduped);
          }
        });

        it('reports failed attempts while PostgreSQL is down, never to the client, and sends once it is back', async () => {
          const { app, rc, errors, firstError } = appWith();
          const toBoss = pgBoss(boss, { attempts: 60, backoff: 50, attemptTimeout: 1000 });
          app.use(async (ctx) => {
            ctx.raincheck(toBoss, queue, { order: 42 });
            ctx.body = 'ordered';
          });
          await postgres().cut();
          await request(app.callback()).post('/order').expect(200, 'ordered');
          await firstError;
          await postgres().restore();
          await rc.onIdle();
          const reported = errors.map(({ error }) => error as RaincheckJobError);
          expect(reported.length).to.be.greaterThan(0);
          for (const error of reported) {
            expect(error).to.be.instanceOf(RaincheckJobError);
            expect(error.cause).to.be.instanceOf(RaincheckEnqueueError);
            expect(error.message).to.match(
              /could not add job test_\d+ to queue test_\d+ \(attempt \d+ of 60, retrying\)/,
            );
            // The data is on the error, not in its message, which logs print.
            expect((error.cause as RaincheckEnqueueError).data).to.deep.equal({ order: 42 });
            expect(error.message).not.to.include('order');
          }
          expect(rc.stats).to.include({ succeeded: 1, failed: 0 });
          expect(await opened().queued(queue)).to.equal(1);
          // Every attempt was made under one id, the one the reports name: a retry under it is no duplicate.
          const ids = new Set(reported.map((error) => (error.cause as RaincheckEnqueueError).jobId));
          expect(ids.size).to.equal(1);
          const [jobId] = ids;
          expect(await opened().dataOf(queue, jobId as string)).to.deep.equal({ order: 42 });
        });

        it('throws a TypeError for a boss that is not one', () => {
          expect(() => pgBoss({} as PgBossLike)).to.throw(
            TypeError,
            'Expected `boss` to be a PgBoss instance, got `object`',
          );
          expect(() => pgBoss(undefined as unknown as PgBossLike)).to.throw(
            TypeError,
            'Expected `boss` to be a PgBoss instance, got `undefined`',
          );
        });

        it('drains pending sends on SIGTERM in a real child process', async () => {
          const server = await startChild('pg-boss-shutdown.ts', {
            PG_BOSS_MODULE: major.module,
            PG_BOSS_SCHEMA: schema,
            QUEUE: queue,
            DATABASE_URL: postgres().url,
          });
          await postgres().cut(); // the sends cannot get through: they are pending when SIGTERM comes
          await getAll(server.port, 20, (id) => `/?id=${id}`);
          const exited = server.terminate();
          await server.printed('draining');
          await postgres().restore();
          const code = await exited;
          expect(server.out()).to.match(/draining 20\n/);
          expect(code).to.equal(0);
          expect(await opened().queued(queue)).to.equal(20);
        });
      });
    }
  });
});
