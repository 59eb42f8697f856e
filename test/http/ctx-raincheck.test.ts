import { Readable } from 'node:stream';
import { expect } from 'chai';
import Koa from 'koa';
import request from 'supertest';
import { raincheck, Scheduled } from '../../src/index.js';
import { appWith, deferred, requestIds, Timeline } from '../helpers.js';

/** How long the slow job works: far longer than the response takes. */
const SLOW_JOB_MS = 300;

describe('ctx.raincheck(fn, ...args)', () => {
  it('runs the job after the response has been sent, with the arguments given', async () => {
    const { app, rc } = appWith();
    const calls: unknown[][] = [];
    let finishedBeforeJob: boolean | undefined;
    app.use(async (ctx) => {
      ctx.raincheck(
        (to: string, subject: string) => {
          finishedBeforeJob = ctx.res.writableFinished;
          calls.push([to, subject]);
        },
        'a@example.com',
        'Hello',
      );
      ctx.body = 'ok';
    });
    await request(app.callback()).get('/').expect(200, 'ok');
    await rc.onIdle();
    expect(calls).to.deep.equal([['a@example.com', 'Hello']]);
    expect(finishedBeforeJob).to.equal(true);
  });

  it('does not make the client wait for a slow job', async () => {
    const { app, rc } = appWith();
    const clientHasResponse = deferred();
    const timeline = new Timeline();
    app.use(async (ctx) => {
      ctx.raincheck(async () => {
        timeline.add('job started');
        // The job cannot end before the client has its response: if the response waited for the job,
        // this test would hang and time out.
        await clientHasResponse.promise;
        await new Promise((resolve) => setTimeout(resolve, SLOW_JOB_MS)); // the job's own work, not a wait
        timeline.add('job finished');
      });
      ctx.body = 'ok';
    });
    await request(app.callback()).get('/').expect(200);
    timeline.add('response received');
    clientHasResponse.resolve();
    await rc.onIdle();
    expect(timeline.indexOf('response received')).to.be.lessThan(timeline.indexOf('job finished'));
  });

  it('starts jobs only after the downstream middleware has resolved', async () => {
    const { app, rc } = appWith();
    const timeline = new Timeline();
    app.use(async (_ctx, next) => {
      await next();
      await new Promise((resolve) => setImmediate(resolve));
      timeline.add('upstream done');
    });
    app.use(async (ctx) => {
      ctx.raincheck(() => timeline.add('job'));
      await new Promise((resolve) => setTimeout(resolve, 20));
      timeline.add('handler done');
      ctx.body = 'ok';
    });
    await request(app.callback()).get('/').expect(200);
    await rc.onIdle();
    expect(timeline.events).to.deep.equal(['handler done', 'upstream done', 'job']);
  });

  it('waits for a streamed body to end', async () => {
    const { app, rc } = appWith();
    const timeline = new Timeline();
    app.use(async (ctx) => {
      const chunks = ['one ', 'two ', 'three'];
      ctx.type = 'text/plain';
      ctx.body = new Readable({
        read() {
          const chunk = chunks.shift();
          setTimeout(() => {
            if (chunk === undefined) {
              timeline.add('stream ended');
              this.push(null);
            } else this.push(chunk);
          }, 20);
        },
      });
      ctx.raincheck(() => timeline.add(`job (res finished: ${ctx.res.writableFinished})`));
    });
    await request(app.callback()).get('/').expect(200, 'one two three');
    await rc.onIdle();
    expect(timeline.events).to.deep.equal(['stream ended', 'job (res finished: true)']);
  });

  it('waits for user code to end the response when ctx.respond is false', async () => {
    const { app, rc } = appWith();
    const timeline = new Timeline();
    app.use(async (ctx) => {
      ctx.respond = false;
      ctx.raincheck(() => timeline.add(`job (res finished: ${ctx.res.writableFinished})`));
      ctx.res.writeHead(200, { 'content-type': 'text/plain' });
      ctx.res.write('partial ');
      setTimeout(() => {
        timeline.add('user code ends response');
        ctx.res.end('done');
      }, 50);
    });
    await request(app.callback()).get('/').expect(200, 'partial done');
    await rc.onIdle();
    expect(timeline.events).to.deep.equal(['user code ends response', 'job (res finished: true)']);
  });

  it('returns a Scheduled that says whether the call was queued or collapsed', async () => {
    const { app, rc } = appWith();
    const returned: Scheduled[] = [];
    const noop = (_n: number) => {};
    app.use(async (ctx) => {
      returned.push(ctx.raincheck(noop, 1), ctx.raincheck(noop, 1), ctx.raincheck(noop, 2));
      ctx.body = 'ok';
    });
    await request(app.callback()).get('/').expect(200);
    await rc.onIdle();
    expect(returned.map((s) => s instanceof Scheduled)).to.deep.equal([true, true, true]);
    expect(returned.map((s) => s.deduped)).to.deep.equal([false, true, false]);
    expect(returned[1]?.job).to.equal(returned[0]?.job);
    expect(returned.map((s) => s.job.state)).to.deep.equal(['succeeded', 'succeeded', 'succeeded']);
  });

  it('throws a TypeError at the call site when fn is not a function', async () => {
    const { app } = appWith();
    const thrown: unknown[] = [];
    app.use(async (ctx) => {
      for (const bad of ['sendEmail', undefined, null, 42, {}]) {
        try {
          (ctx.raincheck as (fn: unknown) => unknown)(bad);
        } catch (error) {
          thrown.push(error);
        }
      }
      ctx.body = 'ok';
    });
    await request(app.callback()).get('/').expect(200);
    expect(thrown.map((e) => (e as Error).constructor)).to.deep.equal(Array(5).fill(TypeError));
    expect(thrown.map((e) => (e as Error).message)).to.deep.equal([
      'Expected `fn` to be a function, got `string`',
      'Expected `fn` to be a function, got `undefined`',
      'Expected `fn` to be a function, got `null`',
      'Expected `fn` to be a function, got `number`',
      'Expected `fn` to be a function, got `object`',
    ]);
  });

  it('throws a clear error when the raincheck() middleware is not upstream', async () => {
    const { app } = appWith();
    let thrown: unknown;
    const other = new (app.constructor as typeof Koa)();
    other.context = app.context; // shares the installed method, but requests skip the middleware
    other.use(async (ctx) => {
      try {
        ctx.raincheck(() => {});
      } catch (error) {
        thrown = error;
      }
      ctx.body = 'ok';
    });
    await request(app.callback()).get('/'); // installs ctx.raincheck on app.context
    await request(other.callback()).get('/').expect(200);
    expect(thrown).to.be.instanceOf(Error);
    expect((thrown as Error).message).to.match(/did not pass through the raincheck\(\) middleware/);
  });

  for (const [mounting, mount] of [
    ['mounted after the route', (app: Koa) => app.use(raincheck())],
    ['not mounted at all', (_app: Koa) => {}],
  ] as const) {
    it(`throws the error that names the fix on the app's very first request, raincheck() ${mounting}`, async () => {
      const app = new Koa(); // a new app: no request has passed through raincheck() in it
      let thrown: unknown;
      app.use(async (ctx, next) => {
        try {
          ctx.raincheck(() => {});
        } catch (error) {
          thrown = error;
        }
        ctx.body = 'ok';
        await next();
      });
      mount(app);
      await request(app.callback()).get('/').expect(200);
      expect(thrown).to.be.instanceOf(Error);
      expect((thrown as Error).message).to.match(
        /did not pass through the raincheck\(\) middleware: app\.use\(raincheck\(\)\) must come before/,
      );
    });
  }

  it('keeps ctx.raincheck out of what Koa shows of ctx (inspect, toJSON, keys)', async () => {
    const app = new Koa();
    let shown: unknown;
    app.use((ctx) => {
      shown = [Object.keys(ctx), JSON.stringify(ctx), Object.keys(ctx.app.context)];
      ctx.body = 'ok';
    });
    await request(app.callback()).get('/').expect(200);
    expect(JSON.stringify(shown)).not.to.include('raincheck');
  });

  it('loses no job when a handler replaces ctx.state after scheduling', async () => {
    const { app, rc } = appWith();
    const ran: string[] = [];
    app.use(async (ctx) => {
      ctx.raincheck(() => ran.push('before'));
      ctx.state = { user: 'ann' }; // the queue shown on the old state object is gone from it
      ctx.raincheck(() => ran.push('after'));
      await Promise.resolve();
      ctx.raincheck(() => ran.push('later'));
      ctx.body = 'ok';
    });
    await request(app.callback()).get('/').expect(200);
    await rc.onIdle();
    expect(ran).to.deep.equal(['before', 'after', 'later']);
  });

  describe('scheduled late', () => {
    it('runs a job scheduled from inside a running job', async () => {
      const { app, rc } = appWith();
      const ran: string[] = [];
      app.use(async (ctx) => {
        ctx.raincheck(() => {
          ran.push('first');
          ctx.raincheck(() => ran.push('scheduled by first'));
        });
        ctx.body = 'ok';
      });
      await request(app.callback()).get('/').expect(200);
      await rc.onIdle();
      expect(ran).to.deep.equal(['first', 'scheduled by first']);
    });

    for (const dedupe of [true, false]) {
      it(`runs each job once when jobs schedule more while the request's jobs start (dedupe: ${dedupe})`, async () => {
        const { app, rc } = appWith({ dedupe });
        const ran: string[] = [];
        app.use(async (ctx) => {
          // Jobs a and c each schedule one more as they run: those must run once, after the first three.
          const job = (name: string, more?: string) => {
            ran.push(name);
            if (more !== undefined) ctx.raincheck(job, more);
          };
          ctx.raincheck(job, 'a', 'a2');
          ctx.raincheck(job, 'b');
          ctx.raincheck(job, 'c', 'c2');
          ctx.body = 'ok';
        });
        await request(app.callback()).get('/').expect(200);
        await rc.onIdle();
        expect(ran).to.deep.equal(['a', 'b', 'c', 'a2', 'c2']);
        expect(rc.stats).to.include({ scheduled: 5, succeeded: 5 });
      });
    }

    it('runs a job scheduled from a timer after the response has finished', async () => {
      const { app, rc } = appWith();
      const late = deferred<boolean>();
      app.use(async (ctx) => {
        ctx.res.on('finish', () => {
          setTimeout(() => ctx.raincheck(() => late.resolve(ctx.res.writableFinished)), 10);
        });
        ctx.body = 'ok';
      });
      await request(app.callback()).get('/').expect(200);
      expect(await late.promise).to.equal(true);
      await rc.onIdle();
    });

    it('runs a late job of a request that scheduled nothing during the request', async () => {
      const { app, rc } = appWith();
      const late = deferred<string>();
      app.use(async (ctx) => {
        ctx.res.on('finish', () => setImmediate(() => ctx.raincheck(late.resolve, 'ran')));
        ctx.body = 'ok';
      });
      await request(app.callback()).get('/').expect(200);
      expect(await late.promise).to.equal('ran');
      await rc.onIdle();
    });
  });

  it('keeps concurrent requests apart: each job runs once, with its own request’s arguments', async () => {
    const { app, rc } = appWith();
    const runs: Array<{ id: string; seenBy: string }> = [];
    app.use(async (ctx) => {
      const id = String(ctx.query.id);
      ctx.raincheck((jobId: string) => {
        runs.push({ id: jobId, seenBy: id });
      }, id);
      // Interleave: requests finish in a different order than they started.
      await new Promise((resolve) => setTimeout(resolve, (Number(id) * 7) % 23));
      ctx.raincheck((jobId: string) => runs.push({ id: `${jobId}-second`, seenBy: id }), id);
      ctx.body = id;
    });
    await requestIds(app, 60); // all at once, each answered with its own id
    await rc.onIdle();
    const expected = Array.from({ length: 60 }, (_, i) => [
      { id: String(i), seenBy: String(i) },
      { id: `${i}-second`, seenBy: String(i) },
    ]).flat();
    expect(runs).to.have.deep.members(expected);
    expect(runs).to.have.length(expected.length);
  });
});
