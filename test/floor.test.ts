// The benchmark's floor (bench/floor.mjs) is only a fair yardstick if it is correct: the core semantics it
// claims, checked over real HTTP like the library's.
import { AsyncLocalStorage } from 'node:async_hooks';
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import Koa from 'koa';
import request from 'supertest';

type Floor = (options?: { keepContext?: boolean }) => Koa.Middleware;
type Schedule = (fn: (...args: never[]) => unknown, ...args: unknown[]) => void;
const { floor } = (await import(new URL('../bench/floor.mjs', import.meta.url).href)) as { floor: Floor };

/** The floor's jobs have no idle promise: each test's last job resolves this. */
function appWithFloor() {
  const app = new Koa();
  app.silent = true;
  app.use(floor());
  return app;
}

describe('the floor middleware of the benchmark (bench/floor.mjs)', () => {
  it('runs a job after the response has closed, once per identical call, in its scheduling context', async () => {
    const app = appWithFloor();
    const als = new AsyncLocalStorage<string>();
    const ran: string[] = [];
    let done!: () => void;
    const finished = new Promise<void>((resolve) => {
      done = resolve;
    });
    app.use((ctx) => {
      const schedule = (ctx as unknown as { raincheck: Schedule }).raincheck.bind(ctx);
      const job = (to: string, data: object) => {
        ran.push(`${to} ${JSON.stringify(data)} ${als.getStore()} ${ctx.res.writableFinished}`);
        done();
      };
      als.run('request 1', () => {
        schedule(job, 'a', { n: 1 });
        schedule(job, 'a', { n: 1 }); // identical: collapsed by fingerprint
      });
      ctx.body = 'ok';
    });
    await request(app.callback()).get('/').expect(200);
    await finished;
    expect(ran).to.deep.equal(['a {"n":1} request 1 true']);
  });

  it('runs nothing for a failed request, and reports a failing job to app.emit("error")', async () => {
    const app = appWithFloor();
    const ran: string[] = [];
    app.use((ctx) => {
      const schedule = (ctx as unknown as { raincheck: Schedule }).raincheck.bind(ctx);
      schedule(() => ran.push(ctx.path));
      if (ctx.path === '/fail') ctx.throw(500);
      schedule(() => Promise.reject(new Error('job failed')));
      ctx.body = 'ok';
    });
    await request(app.callback()).get('/fail').expect(500); // Koa's own 'error' for the request
    const reported = once(app, 'error');
    await request(app.callback()).get('/ok').expect(200);
    const [error] = await reported;
    expect((error as Error).message).to.equal('job failed');
    expect(ran).to.deep.equal(['/ok']);
  });

  it('runs the jobs of a request whose client went away before the handler ended', async () => {
    const app = appWithFloor();
    let entered!: () => void;
    const inHandler = new Promise<void>((resolve) => {
      entered = resolve;
    });
    let ran!: () => void;
    const jobRan = new Promise<void>((resolve) => {
      ran = resolve;
    });
    app.use(async (ctx) => {
      (ctx as unknown as { raincheck: Schedule }).raincheck.call(ctx, () => ran());
      entered();
      await once(ctx.res, 'close'); // the client is gone: the response is over before the handler ends
      ctx.body = 'ok';
    });
    const server = app.listen(0, '127.0.0.1');
    await once(server, 'listening');
    try {
      const req = http.get({ port: (server.address() as AddressInfo).port, host: '127.0.0.1' });
      req.on('error', () => {}); // the abort below
      await inHandler;
      req.destroy();
      await jobRan; // with a 'close' listener added only after the downstream settled, it never would
    } finally {
      server.close();
    }
  });
});
