import diagnostics_channel from 'node:diagnostics_channel';
import { expect } from 'chai';
import type Koa from 'koa';
import request from 'supertest';
import {
  type Job,
  jobSignal,
  type RaincheckJobError,
  RaincheckOverflowError,
  RaincheckTimeoutError,
} from '../../src/index.js';
import { appWith, deferred } from '../helpers.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
/** How long the jobs that are meant to time out work: well past their timeouts (20 and 30 ms). */
const PAST_TIMEOUT_MS = 120;

describe('raincheck({ concurrency, maxWaiting })', () => {
  it('runs at most `concurrency` jobs at once across requests, the others in the order they came', async () => {
    const { app, rc } = appWith({ concurrency: 3 });
    let running = 0;
    let peak = 0;
    const started: number[] = [];
    const allScheduled = deferred();
    app.use(async (ctx) => {
      const n = Number(ctx.query.n);
      ctx.raincheck(async () => {
        started.push(n);
        peak = Math.max(peak, ++running);
        await allScheduled.promise;
        await sleep(1);
        running--;
      });
      ctx.body = 'ok';
    });
    for (let n = 0; n < 12; n++) await request(app.callback()).get(`/?n=${n}`).expect(200);
    expect(rc.stats).to.include({ running: 3, waiting: 9 });
    allScheduled.resolve();
    await rc.onIdle();
    expect(peak).to.equal(3);
    expect(started).to.deep.equal([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
  });

  it('counts waiting jobs in stats and keeps the bound with runAsync: false', async () => {
    const { app, rc } = appWith({ concurrency: 1, runAsync: false });
    const release = deferred();
    const order: string[] = [];
    app.use(async (ctx) => {
      const id = String(ctx.query.id);
      ctx.raincheck(async () => {
        order.push(`${id}1`);
        await release.promise;
      });
      ctx.raincheck(() => order.push(`${id}2`));
      ctx.body = 'ok';
    });
    await request(app.callback()).get('/?id=a');
    await request(app.callback()).get('/?id=b');
    await new Promise((resolve) => setImmediate(resolve));
    expect(rc.stats).to.include({ running: 1, waiting: 1 });
    release.resolve();
    await rc.onIdle();
    expect(order.indexOf('a1')).to.be.lessThan(order.indexOf('a2')); // in order within a request
    expect(order).to.have.members(['a1', 'a2', 'b1', 'b2']);
  });

  it('reports exactly the jobs over maxWaiting as RaincheckOverflowError, and runs all the others', async () => {
    const overflowed: RaincheckJobError[] = [];
    const { app, rc } = appWith({
      concurrency: 2,
      maxWaiting: 3,
      onError: (error) => overflowed.push(error),
    });
    const release = deferred();
    const ran: number[] = [];
    app.use(async (ctx) => {
      for (let n = 0; n < 10; n++) {
        ctx.raincheck(async (i: number) => {
          await release.promise;
          ran.push(i);
        }, n);
      }
      ctx.body = 'ok';
    });
    await request(app.callback()).get('/').expect(200);
    await new Promise((resolve) => setImmediate(resolve));
    expect(rc.stats).to.include({ running: 2, waiting: 3, dropped: 5 });
    release.resolve();
    await rc.onIdle();
    expect(ran.sort((a, b) => a - b)).to.deep.equal([0, 1, 2, 3, 4]);
    expect(overflowed.map((e) => e instanceof RaincheckOverflowError)).to.deep.equal(Array(5).fill(true));
    expect(overflowed.map((e) => e.job.args[0])).to.deep.equal([5, 6, 7, 8, 9]);
    expect(overflowed[0]?.message).to.equal(
      'koa-raincheck: job anonymous() not run: 3 jobs were already waiting for a free slot (maxWaiting)',
    );
    expect(overflowed.every((e) => e.job.state === 'dropped')).to.equal(true);
  });
});

describe('raincheck({ timeout }), .timeout(ms) and jobSignal()', () => {
  it('reports a job past its timeout, aborts its signal, frees its slot, and ignores its late end', async () => {
    const { app, rc, errors } = appWith({ timeout: 30, concurrency: 1 });
    const signals: AbortSignal[] = [];
    const finishedLate = deferred();
    const ran: string[] = [];
    app.use(async (ctx) => {
      ctx.raincheck(async function slow() {
        signals.push(jobSignal());
        await sleep(PAST_TIMEOUT_MS);
        finishedLate.resolve();
      });
      ctx.raincheck(() => ran.push('next in line'));
      ctx.body = 'ok';
    });
    await request(app.callback()).get('/').expect(200);
    await rc.drain({ timeout: 100 }).then((r) => expect(r.drained).to.equal(true)); // not held up by slow()
    expect(ran).to.deep.equal(['next in line']);
    const error = errors[0]?.error as RaincheckTimeoutError;
    expect(error).to.be.instanceOf(RaincheckTimeoutError);
    expect(error.message).to.equal('koa-raincheck: job slow() timed out after 30 ms');
    expect(error.job.state).to.equal('timedOut');
    expect(signals[0]?.aborted).to.equal(true);
    expect(signals[0]?.reason).to.equal(error);
    await finishedLate.promise;
    await new Promise((resolve) => setImmediate(resolve));
    expect(error.job.state).to.equal('timedOut');
    expect(rc.stats).to.include({ timedOut: 1, succeeded: 1, running: 0 });
    expect(errors).to.have.length(1);
  });

  it('lets one call set its own timeout', async () => {
    const { app, rc, errors } = appWith();
    app.use(async (ctx) => {
      ctx.raincheck(() => sleep(PAST_TIMEOUT_MS)).timeout(20);
      ctx.raincheck(() => sleep(40));
      ctx.body = 'ok';
    });
    await request(app.callback()).get('/').expect(200);
    await rc.onIdle();
    expect(errors.map(({ error }) => (error as Error).message)).to.deep.equal([
      'koa-raincheck: job anonymous() timed out after 20 ms',
    ]);
    expect(rc.stats).to.include({ timedOut: 1, succeeded: 1 });
  });

  it('throws a TypeError for a bad per-call timeout', async () => {
    const { app } = appWith();
    const thrown: string[] = [];
    app.use(async (ctx) => {
      const scheduled = ctx.raincheck(() => {});
      for (const bad of [0, -1, Number.NaN, '10']) {
        try {
          scheduled.timeout(bad as number);
        } catch (error) {
          thrown.push(`${(error as Error).constructor.name}: ${(error as Error).message}`);
        }
      }
      ctx.body = 'ok';
    });
    await request(app.callback()).get('/').expect(200);
    expect(thrown).to.deep.equal([
      'TypeError: Expected `ms` to be a positive number, got `0`',
      'TypeError: Expected `ms` to be a positive number, got `-1`',
      'TypeError: Expected `ms` to be a positive number, got `NaN`',
      'TypeError: Expected `ms` to be a positive number, got `string`',
    ]);
  });
});

describe('rc.stats and the koa-raincheck:job:* channels', () => {
  it('count every job in exactly one outcome, and publish a start and one end for each', async () => {
    const starts: Job[] = [];
    const ends: Array<{ job: Job; state: string; duration: number | undefined }> = [];
    const onStart = (message: unknown) => starts.push((message as { job: Job }).job);
    const onEnd = (message: unknown) => ends.push(message as { job: Job; state: string; duration: number });
    diagnostics_channel.subscribe('koa-raincheck:job:start', onStart);
    diagnostics_channel.subscribe('koa-raincheck:job:end', onEnd);
    try {
      const { app, rc } = appWith({ timeout: 20, onDrop: () => {}, onError: () => {} });
      const job = (n: number) => n;
      app.use(async (ctx: Koa.Context) => {
        ctx.raincheck(job, 1);
        ctx.raincheck(job, 1); // deduped
        ctx.raincheck(() => sleep(5));
        ctx.raincheck(() => {
          throw new Error('x');
        });
        ctx.raincheck(() => sleep(PAST_TIMEOUT_MS)); // times out
        if (ctx.query.fail)
          ctx.status = 500; // all dropped
        else ctx.body = 'ok';
      });
      await request(app.callback()).get('/');
      await request(app.callback()).get('/?fail=1');
      await rc.onIdle();
      expect(rc.stats).to.deep.equal({
        scheduled: 8,
        deduped: 2,
        awaitingResponse: 0,
        waiting: 0,
        running: 0,
        succeeded: 2,
        failed: 1,
        timedOut: 1,
        dropped: 4,
        coalesced: 0,
      });
      expect(starts).to.have.length(4);
      expect(ends).to.have.length(8);
      expect(new Set(ends.map((e) => e.job)).size).to.equal(8);
      const slow = ends.find((e) => e.state === 'succeeded' && (e.duration ?? 0) >= 4);
      expect(slow, 'a duration in ms for the 5 ms job').to.not.equal(undefined);
      expect(ends.filter((e) => e.state === 'dropped').every((e) => e.duration === undefined)).to.equal(true);
    } finally {
      diagnostics_channel.unsubscribe('koa-raincheck:job:start', onStart);
      diagnostics_channel.unsubscribe('koa-raincheck:job:end', onEnd);
    }
  });
});
