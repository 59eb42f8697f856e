import http from 'node:http';
import { expect } from 'chai';
import type Koa from 'koa';
import request from 'supertest';
import type { Job, ResponseOutcome } from '../../src/index.js';
import { appWith, deferred, listen } from '../helpers.js';

describe('raincheck({ runWhen, onDrop })', () => {
  function recordingApp(options: Parameters<typeof appWith>[0] = {}) {
    const dropped: Array<{ name: string; outcome: ResponseOutcome }> = [];
    const setup = appWith({
      onDrop: (job: Job, outcome: ResponseOutcome) => dropped.push({ name: job.name, outcome }),
      ...options,
    });
    return { ...setup, dropped };
  }

  it('drops the jobs of a request whose downstream threw, and reports each drop', async () => {
    const { app, rc, dropped } = recordingApp();
    const ran: string[] = [];
    app.use(async (ctx) => {
      ctx.raincheck(function audit() {
        ran.push('audit');
      });
      ctx.throw(500, 'boom');
    });
    await request(app.callback()).get('/').expect(500);
    await rc.onIdle();
    expect(ran).to.deep.equal([]);
    expect(dropped.map((d) => d.name)).to.deep.equal(['audit']);
    expect(dropped[0]?.outcome).to.include({ status: 500, threw: true, aborted: false });
    expect((dropped[0]?.outcome.error as Error | undefined)?.message).to.equal('boom');
  });

  it('drops the jobs of a request that ended with a status of 400 or more', async () => {
    const { app, rc, dropped } = recordingApp();
    const ran: number[] = [];
    app.use(async (ctx) => {
      const status = Number(ctx.query.status);
      ctx.raincheck((s: number) => ran.push(s), status);
      ctx.status = status;
      ctx.body = 'x';
    });
    for (const status of [200, 302, 399, 400, 404, 503]) {
      await request(app.callback()).get(`/?status=${status}`).expect(status);
    }
    await rc.onIdle();
    expect(ran).to.deep.equal([200, 302, 399]);
    expect(dropped.map((d) => d.outcome.status)).to.deep.equal([400, 404, 503]);
    expect(dropped.every((d) => !d.outcome.threw)).to.equal(true);
  });

  it('runs a job marked .always() even when the request fails', async () => {
    const { app, rc, dropped } = recordingApp();
    const ran: string[] = [];
    app.use(async (ctx) => {
      ctx.raincheck(() => ran.push('always')).always();
      ctx.raincheck(function normal() {
        ran.push('normal');
      });
      ctx.throw(422);
    });
    await request(app.callback()).get('/').expect(422);
    await rc.onIdle();
    expect(ran).to.deep.equal(['always']);
    expect(dropped.map((d) => d.name)).to.deep.equal(['normal']);
  });

  it('lets runWhen change the rule', async () => {
    const { app, rc, dropped } = recordingApp({ runWhen: (o) => o.status !== 418 });
    const ran: number[] = [];
    app.use(async (ctx) => {
      const status = Number(ctx.query.status);
      ctx.raincheck(() => ran.push(status));
      ctx.status = status;
      ctx.body = 'x';
    });
    await request(app.callback()).get('/?status=404').expect(404);
    await request(app.callback()).get('/?status=418').expect(418);
    await rc.onIdle();
    expect(ran).to.deep.equal([404]);
    expect(dropped.map((d) => d.outcome.status)).to.deep.equal([418]);
  });

  it('runs the jobs, and emits a process warning, when runWhen itself throws', async () => {
    const { app, rc } = appWith({
      runWhen: () => {
        throw new Error('broken predicate');
      },
    });
    const warning = deferred<Error>();
    const onWarning = (w: Error) => warning.resolve(w);
    process.on('warning', onWarning);
    const ran: string[] = [];
    app.use(async (ctx) => {
      ctx.raincheck(() => ran.push('job'));
      ctx.body = 'ok';
    });
    try {
      await request(app.callback()).get('/').expect(200);
      await rc.onIdle();
      expect(ran).to.deep.equal(['job']);
      expect((await warning.promise).message).to.equal('koa-raincheck: runWhen threw: broken predicate');
    } finally {
      process.off('warning', onWarning);
    }
  });

  it('runs the jobs of a request whose client disconnected (outcome.aborted)', async () => {
    const outcomes: ResponseOutcome[] = [];
    const { app, rc } = appWith({
      runWhen: (outcome) => {
        outcomes.push(outcome);
        return outcome.status < 400;
      },
    });
    const ran: string[] = [];
    const clientGone = deferred();
    app.use(async (ctx) => {
      ctx.raincheck(() => ran.push('welcome email'));
      // The response's 'close', which the library watches, not the request's: Deno emits the request's
      // first, and a response ended in the same turn is then reported finished (its 'close' comes after,
      // with writableFinished true, though no 'finish' came and the connection was gone).
      ctx.res.once('close', () => clientGone.resolve());
      await clientGone.promise; // the handler finishes its work after the client has left
      ctx.body = 'too late';
    });
    const { url, close } = await listen(app);
    try {
      const req = http.get(url);
      req.on('error', () => {});
      req.on('socket', (socket) => socket.on('connect', () => setImmediate(() => req.destroy())));
      await clientGone.promise;
      await rc.onIdle();
    } finally {
      await close();
    }
    expect(ran).to.deep.equal(['welcome email']);
    expect(outcomes).to.have.length(1);
    expect(outcomes[0]).to.include({ aborted: true, threw: false });
  });

  it('reports a drop to NODE_DEBUG by default and never fails the request', async () => {
    const { app, rc } = appWith();
    app.use(async (ctx) => {
      ctx.raincheck(() => {});
      ctx.status = 404;
    });
    await request(app.callback()).get('/').expect(404);
    await rc.onIdle();
    expect(rc.pending).to.equal(0);
  });

  describe('behind an upstream error-handling middleware', () => {
    function withErrorHandler(status: number) {
      const { app, rc, dropped } = recordingApp();
      // raincheck() is mounted first by appWith; put the error handler outside it.
      const rcFirst = app.middleware.shift() as Koa.Middleware;
      app.middleware.unshift(async (ctx, next) => {
        try {
          await next();
        } catch {
          ctx.status = status;
          ctx.body = { error: 'handled' };
        }
      }, rcFirst);
      return { app, rc, dropped };
    }

    it('drops the jobs when the downstream threw, whatever status the handler chose', async () => {
      const { app, rc, dropped } = withErrorHandler(200);
      const ran: string[] = [];
      app.use(async (ctx) => {
        ctx.raincheck(() => ran.push('job'));
        throw new Error('boom');
      });
      await request(app.callback()).get('/').expect(200, { error: 'handled' });
      await rc.onIdle();
      expect(ran).to.deep.equal([]);
      expect(dropped[0]?.outcome).to.include({ status: 200, threw: true });
    });

    it('runs .always() jobs after the handled error response', async () => {
      const { app, rc } = withErrorHandler(503);
      const ran: boolean[] = [];
      app.use(async (ctx) => {
        ctx.raincheck(() => ran.push(ctx.res.writableFinished)).always();
        throw new Error('boom');
      });
      await request(app.callback()).get('/').expect(503);
      await rc.onIdle();
      expect(ran).to.deep.equal([true]);
    });
  });
});
