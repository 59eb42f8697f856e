import { randomUUID } from 'node:crypto';
import type * as Bullmq from 'bullmq';
import { expect } from 'chai';
import Koa from 'koa';
import request from 'supertest';
import { type BullmqQueueLike, bullmq, RaincheckEnqueueError } from '../../src/adapters/bullmq.js';
import { RaincheckJobError, type RaincheckMiddleware, raincheck } from '../../src/index.js';
import { getAll, startChild } from '../child.js';
import { appWith, deferred } from '../helpers.js';
import { redisConnection, useServer, whenServer } from '../servers.js';
import { type Major, majorsForThisNode } from './majors.js';

/** What the tests use of bullmq, typed as 6's API: both majors have it the same. */
type BullmqModule = Pick<typeof Bullmq, 'Queue' | 'Worker'>;

const majors: ReadonlyArray<Major & { load(): Promise<BullmqModule> }> = [
  { label: 'bullmq 6', module: 'bullmq', load: () => import('bullmq') },
  // test/types/adapters.types.ts checks the adapter's types against 5's own.
  {
    label: 'bullmq 5',
    module: 'bullmq-5',
    load: async () => (await import('bullmq-5')) as unknown as BullmqModule,
  },
];

whenServer('redis', 'the koa-raincheck/bullmq suite', () => {
  describe('koa-raincheck/bullmq: bullmq(queue, options)', function () {
    this.timeout(30_000);
    const redis = useServer('redis');
    // Keys of this run's own: a shared Redis (REDIS_URL) may hold other runs' and apps' queues.
    const prefix = `raincheck-test-${randomUUID().slice(0, 8)}`;
    let n = 0;

    for (const major of majorsForThisNode(majors)) {
      describe(`with ${major.label}`, () => {
        let lib: BullmqModule;
        let queue: Bullmq.Queue;
        let queueName: string;
        const options = () => ({ connection: redisConnection(redis().url), prefix });

        before(async () => {
          lib = await major.load();
        });
        beforeEach(() => {
          queueName = `test-${process.pid}-${++n}`;
          queue = new lib.Queue(queueName, options());
          queue.on('error', () => {});
        });
        afterEach(async () => {
          await redis().restore(); // after a test that failed while Redis was cut
          await queue.obliterate({ force: true }).catch(() => {});
          await queue.close();
        });

        /** One request whose jobs all find Redis cut off (afterEach restores it if this fails). */
        async function requestWhileCut(app: Koa, rc: RaincheckMiddleware): Promise<void> {
          await queue.waitUntilReady();
          await redis().cut();
          await request(app.callback()).get('/').expect(200);
          await rc.onIdle();
          await redis().restore();
        }

        it('adds exactly one job after a successful response, and a worker consumes it', async () => {
          const { app, rc, errors } = appWith();
          const toQueue = bullmq(queue);
          app.use(async (ctx) => {
            ctx.raincheck(toQueue, 'welcome', { to: 'ann@example.com' });
            ctx.raincheck(toQueue, 'welcome', { to: 'ann@example.com' }); // the same call: collapsed
            ctx.status = 201;
          });
          await request(app.callback()).post('/signup').expect(201);
          await rc.onIdle();
          expect((await queue.getJobCounts('waiting')).waiting).to.equal(1);
          const consumed = deferred<{ name: string; data: unknown }>();
          const worker = new lib.Worker(
            queueName,
            async (job) => consumed.resolve({ name: job.name, data: job.data }),
            options(),
          );
          try {
            expect(await consumed.promise).to.deep.equal({
              name: 'welcome',
              data: { to: 'ann@example.com' },
            });
          } finally {
            await worker.close();
          }
          expect(errors).to.deep.equal([]);
        });

        it('adds the job from service code without ctx, through .schedule()', async () => {
          const app = new Koa({ asyncLocalStorage: true });
          const rc = raincheck();
          app.use(rc);
          const toQueue = bullmq(queue);
          const signUp = (email: string) => toQueue.schedule('welcome', { to: email }); // deep in a service
          app.use(async (ctx) => {
            signUp('bob@example.com');
            ctx.status = 201;
          });
          await request(app.callback()).post('/signup').expect(201);
          await rc.onIdle();
          const jobs = await queue.getJobs(['waiting']);
          expect(jobs.map((job) => [job.name, job.data])).to.deep.equal([
            ['welcome', { to: 'bob@example.com' }],
          ]);
        });

        it('adds nothing for a failed request', async () => {
          const { app, rc } = appWith({ onDrop: () => {} });
          const toQueue = bullmq(queue);
          app.use(async (ctx) => {
            ctx.raincheck(toQueue, 'welcome', { to: 'ann@example.com' });
            ctx.throw(422);
          });
          await request(app.callback()).post('/signup').expect(422);
          await rc.onIdle();
          expect(await queue.count()).to.equal(0);
        });

        it('adds one job for two requests with the same job when deduping across requests', async () => {
          const { app, rc } = appWith();
          const deduping = bullmq(queue, { dedupeAcrossRequests: true });
          const plain = bullmq(queue);
          app.use(async (ctx) => {
            ctx.raincheck(ctx.query.plain ? plain : deduping, 'report', { day: '2026-11-23' });
            ctx.body = 'ok';
          });
          await request(app.callback()).get('/');
          await request(app.callback()).get('/');
          await rc.onIdle();
          expect(await queue.count()).to.equal(1);
          await request(app.callback()).get('/?plain=1');
          await request(app.callback()).get('/?plain=1');
          await rc.onIdle();
          expect(await queue.count()).to.equal(3);
        });

        it('reports failed attempts while Redis is down, never to the client, and adds the job once it is back', async () => {
          const { app, rc, errors, firstError } = appWith();
          const toQueue = bullmq(queue, { attempts: 40, backoff: 50, attemptTimeout: 300 });
          app.use(async (ctx) => {
            ctx.raincheck(toQueue, 'invoice', { order: 42 });
            ctx.body = 'ordered';
          });
          await queue.waitUntilReady();
          await redis().cut();
          await request(app.callback()).post('/order').expect(200, 'ordered');
          await firstError; // a failed attempt was reported
          await redis().restore();
          await rc.onIdle();
          const reported = errors.map(({ error }) => error as RaincheckJobError);
          expect(reported.length).to.be.greaterThan(0);
          for (const error of reported) {
            expect(error).to.be.instanceOf(RaincheckJobError);
            expect(error.cause).to.be.instanceOf(RaincheckEnqueueError);
            expect(error.message).to.match(
              /could not add job invoice to queue test-.* \(attempt \d+ of 40, retrying\)/,
            );
            // The data is on the error, not in its message, which logs print.
            expect((error.cause as RaincheckEnqueueError).data).to.deep.equal({ order: 42 });
            expect(error.message).not.to.include('order');
          }
          expect(rc.stats).to.include({ succeeded: 1, failed: 0 });
          const jobs = await queue.getJobs(['waiting']);
          expect(jobs.map((job) => [job.name, job.data])).to.deep.equal([['invoice', { order: 42 }]]);
        });

        it('fails the job, reported with its name and data, when the attempts run out', async () => {
          const { app, rc, errors } = appWith();
          const toQueue = bullmq(queue, { attempts: 2, backoff: 10, attemptTimeout: 100 });
          app.use(async (ctx) => {
            ctx.raincheck(toQueue, 'invoice', { order: 7 });
            ctx.body = 'ok';
          });
          await requestWhileCut(app, rc);
          const messages = errors.map(({ error }) => (error as Error).message);
          expect(messages).to.have.length(2);
          expect(messages[0]).to.match(/\(attempt 1 of 2, retrying\)/);
          expect(messages[1]).to.match(/job addToBullmq\(\) failed: .*\(attempt 2 of 2, giving up\)/);
          expect(messages.join('\n')).not.to.include('order');
          const last = errors[1]?.error as RaincheckJobError;
          expect(last.cause).to.include({ jobName: 'invoice' });
          expect((last.cause as RaincheckEnqueueError).data).to.deep.equal({ order: 7 });
          expect(rc.stats).to.include({ failed: 1 });
        });

        it('gives up naming the job id an attempt kept offline may still add, and adding again under it adds no second job', async () => {
          const { app, rc, errors } = appWith();
          const toQueue = bullmq(queue, { attempts: 2, backoff: 10, attemptTimeout: 100 });
          app.use(async (ctx) => {
            // A retry of a job given up on: the same call, under the id the report named.
            const jobId = typeof ctx.query.jobId === 'string' ? { jobId: ctx.query.jobId } : undefined;
            ctx.raincheck(toQueue, 'invoice', { order: 9 }, jobId);
            ctx.body = 'ok';
          });
          await requestWhileCut(app, rc);
          expect(rc.stats).to.include({ failed: 1 });
          const reported = errors.at(-1)?.error as RaincheckJobError;
          const gaveUp = reported.cause as RaincheckEnqueueError;
          expect(gaveUp).to.be.instanceOf(RaincheckEnqueueError);
          expect(gaveUp).to.include({ attempt: 2, attempts: 2 });
          expect(gaveUp.jobId).to.be.a('string');
          expect(reported.message).to.include(`giving up): `);
          expect(reported.message).to.include(`may still be added later, as job id ${gaveUp.jobId},`);
          // Every attempt used that id: the earlier failed report names it too.
          expect((errors[0]?.error as Error | undefined)?.message).to.include(`job id ${gaveUp.jobId}`);
          // Redis is back, and ioredis sends what it kept offline: the attempts "given up" on. A command
          // sent now on the same connection runs after them, so no wait is needed to see what they did.
          const landed = await queue.getJob(gaveUp.jobId as string);
          expect(landed?.data).to.deep.equal({ order: 9 });
          expect(await queue.count()).to.equal(1);
          await request(app.callback()).get(`/?jobId=${gaveUp.jobId}`).expect(200);
          await rc.onIdle();
          expect(rc.stats).to.include({ failed: 1, succeeded: 1 });
          expect(await queue.count()).to.equal(1); // BullMQ ignores an add under an id it holds
        });

        it('throws a TypeError for a queue that is not one, and for bad options', () => {
          expect(() => bullmq({} as BullmqQueueLike)).to.throw(
            TypeError,
            'Expected `queue` to be a BullMQ Queue, got `object`',
          );
          expect(() => bullmq(null as unknown as BullmqQueueLike)).to.throw(
            TypeError,
            'Expected `queue` to be a BullMQ Queue, got `null`',
          );
          expect(() => bullmq(queue, { attempts: 0 })).to.throw(
            TypeError,
            'Expected `options.attempts` to be a whole number >= 1, got `0`',
          );
          expect(() => bullmq(queue, { dedupeAcrossRequests: 'yes' as never })).to.throw(
            TypeError,
            'Expected `options.dedupeAcrossRequests` to be a boolean, got `string`',
          );
        });

        it('drains pending enqueues on SIGTERM in a real child process', async () => {
          const server = await startChild('bullmq-shutdown.ts', {
            BULLMQ_MODULE: major.module,
            QUEUE: queueName,
            QUEUE_PREFIX: prefix,
            REDIS_URL: redis().url,
          });
          await redis().cut(); // the enqueues cannot get through: they are pending when SIGTERM comes
          await getAll(server.port, 20, (id) => `/?id=${id}`);
          const exited = server.terminate();
          await server.printed('draining');
          await redis().restore();
          const code = await exited;
          expect(server.out()).to.match(/draining 20\n/);
          expect(code).to.equal(0);
          const jobs = await queue.getJobs(['waiting']);
          expect(jobs.map((job) => job.data.id).sort((a, b) => a - b)).to.deep.equal(
            Array.from({ length: 20 }, (_, i) => i),
          );
        });
      });
    }
  });
});
