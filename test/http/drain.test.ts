import http from 'node:http';
import { expect } from 'chai';
import request from 'supertest';
import { jobSignal, RaincheckDrainTimeoutError } from '../../src/index.js';
import { appWith, deferred, listen } from '../helpers.js';

describe('rc.drain({ timeout })', () => {
  it('resolves once jobs awaiting their response, waiting and running have all settled', async () => {
    const { app, rc } = appWith({ concurrency: 1 });
    const ran: string[] = [];
    const handlerReached = deferred();
    const finishResponse = deferred();
    const firstStarted = deferred();
    const drainCalled = deferred();
    const firstJobsRan = deferred();
    app.use(async (ctx) => {
      if (ctx.path === '/slow-response') {
        ctx.raincheck(() => ran.push('after slow response'));
        handlerReached.resolve();
        await finishResponse.promise;
      } else {
        for (const n of [1, 2, 3]) {
          ctx.raincheck(async (i: number) => {
            if (i === 1) {
              firstStarted.resolve();
              await drainCalled.promise; // running, the two others waiting, when drain() is called
            }
            ran.push(`job ${i}`);
            if (i === 3) firstJobsRan.resolve();
          }, n);
        }
      }
      ctx.body = 'ok';
    });
    const { url, close } = await listen(app);
    try {
      await request(url).get('/').expect(200);
      await firstStarted.promise;
      const slow = request(url)
        .get('/slow-response')
        .then((r) => r.status);
      await handlerReached.promise;
      expect(rc.stats).to.include({ awaitingResponse: 1, waiting: 2, running: 1 });
      let ranWhenDrained: string[] | undefined;
      const draining = rc.drain().then((result) => {
        ranWhenDrained = [...ran];
        return result;
      });
      drainCalled.resolve();
      // Every job but the slow response's has run: a drain() that did not wait for it could be over.
      await firstJobsRan.promise;
      expect(rc.stats).to.include({ awaitingResponse: 1 });
      finishResponse.resolve();
      expect(await slow).to.equal(200);
      expect(await draining).to.deep.equal({ drained: true, unfinished: [] });
      // Whenever it resolved, it was after the job of the response still being handled had run.
      expect(ranWhenDrained).to.have.members(['job 1', 'job 2', 'job 3', 'after slow response']);
    } finally {
      await close();
    }
    expect(ran).to.have.members(['job 1', 'job 2', 'job 3', 'after slow response']);
  });

  it('runs jobs scheduled while draining, and waits for them', async () => {
    const { app, rc } = appWith();
    const ran: string[] = [];
    app.use(async (ctx) => {
      ctx.raincheck(async () => {
        await new Promise((resolve) => setTimeout(resolve, 20));
        ctx.raincheck(() => ran.push('scheduled during drain'));
        ran.push('first');
      });
      ctx.body = 'ok';
    });
    await request(app.callback()).get('/').expect(200);
    expect(await rc.drain({ timeout: 5000 })).to.deep.equal({ drained: true, unfinished: [] });
    expect(ran).to.deep.equal(['first', 'scheduled during drain']);
  });

  it('names a late job of a request whose earlier jobs had all settled when it gives up', async () => {
    const { app, rc } = appWith();
    const release = deferred();
    const lateScheduled = deferred();
    app.use(async (ctx) => {
      ctx.raincheck(function first() {});
      // Once `first` has run, the request has no unsettled job left; then one more comes, late.
      void rc.onIdle().then(() => {
        ctx.raincheck(async function late() {
          await release.promise;
        });
        lateScheduled.resolve();
      });
      ctx.body = 'ok';
    });
    await request(app.callback()).get('/').expect(200);
    await lateScheduled.promise;
    const result = await rc.drain({ timeout: 50 });
    expect(result.drained).to.equal(false);
    expect(result.unfinished.map((job) => [job.name, job.state])).to.deep.equal([['late', 'running']]);
    release.resolve();
    await rc.onIdle();
  });

  it('gives up after its timeout with exactly the unfinished jobs, and aborts their signals', async () => {
    const { app, rc, errors } = appWith();
    const signals: AbortSignal[] = [];
    const release = deferred();
    app.use(async (ctx) => {
      ctx.raincheck(function quick() {});
      ctx.raincheck(async function stuck(id: number) {
        signals.push(jobSignal());
        await release.promise;
        return id;
      }, 1);
      ctx.raincheck(async function stuck(id: number) {
        signals.push(jobSignal());
        await release.promise;
        return id;
      }, 2);
      ctx.body = 'ok';
    });
    await request(app.callback()).get('/').expect(200);
    const result = await rc.drain({ timeout: 50 });
    expect(result.drained).to.equal(false);
    expect(result.unfinished.map((job) => [job.name, job.args, job.state])).to.deep.equal([
      ['stuck', [1], 'running'],
      ['stuck', [2], 'running'],
    ]);
    expect(signals.map((s) => s.aborted)).to.deep.equal([true, true]);
    expect(signals[0]?.reason).to.be.instanceOf(RaincheckDrainTimeoutError);
    release.resolve();
    await rc.onIdle();
    expect(errors).to.deep.equal([]); // giving up is not a job failure: the jobs still finished
  });

  it('ends, through its timeout, while a response never finishes (its job runs when the client leaves)', async () => {
    const { app, rc } = appWith();
    const ran: string[] = [];
    const streaming = deferred();
    app.use(async (ctx) => {
      ctx.raincheck(() => ran.push('after the stream'));
      ctx.respond = false; // server-sent events, never ended by the server
      ctx.res.writeHead(200, { 'content-type': 'text/event-stream' });
      ctx.res.write('data: hello\n\n');
      streaming.resolve();
    });
    const { url, close } = await listen(app);
    try {
      const req = http.get(url);
      req.on('error', () => {});
      await streaming.promise;
      const result = await rc.drain({ timeout: 50 });
      expect(result.drained).to.equal(false);
      expect(result.unfinished.map((job) => job.state)).to.deep.equal(['waiting']);
      expect(ran).to.deep.equal([]);
      req.destroy(); // the client leaves: the response is over
      await rc.onIdle();
      expect(ran).to.deep.equal(['after the stream']);
    } finally {
      await close();
    }
  });

  it('throws a TypeError for a timeout that is not a positive number', () => {
    const { rc } = appWith();
    expect(() => rc.drain({ timeout: 0 })).to.throw(
      TypeError,
      'Expected `options.timeout` to be a positive number, got `0`',
    );
    expect(() => rc.drain({ timeout: '5s' as unknown as number })).to.throw(
      TypeError,
      'Expected `options.timeout` to be a positive number, got `string`',
    );
  });

  it('resolves at once when nothing is pending', async () => {
    const { rc } = appWith();
    expect(await rc.drain({ timeout: 10 })).to.deep.equal({ drained: true, unfinished: [] });
  });
});
