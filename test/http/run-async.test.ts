import http from 'node:http';
import { expect } from 'chai';
import request from 'supertest';
import { appWith, deferred, listen, Timeline } from '../helpers.js';

describe('raincheck({ runAsync })', () => {
  const tick = () => new Promise((resolve) => setTimeout(resolve, 5));

  it('true (default): starts every job at once, each on its own', async () => {
    const { app, rc } = appWith();
    const timeline = new Timeline();
    app.use(async (ctx) => {
      for (const name of ['a', 'b', 'c']) {
        ctx.raincheck(async () => {
          timeline.add(`${name} started`);
          await tick();
          timeline.add(`${name} ended`);
        });
      }
      ctx.body = 'ok';
    });
    await request(app.callback()).get('/').expect(200);
    await rc.onIdle();
    expect(timeline.events.slice(0, 3)).to.deep.equal(['a started', 'b started', 'c started']);
  });

  it('false: runs the jobs one after another, in the order scheduled, late ones last', async () => {
    const { app, rc } = appWith({ runAsync: false });
    const timeline = new Timeline();
    app.use(async (ctx) => {
      for (const name of ['a', 'b', 'c']) {
        ctx.raincheck(async () => {
          timeline.add(`${name} started`);
          if (name === 'a') ctx.raincheck(async () => timeline.add('late started'));
          await tick();
          timeline.add(`${name} ended`);
        });
      }
      ctx.body = 'ok';
    });
    await request(app.callback()).get('/').expect(200);
    await rc.onIdle();
    expect(timeline.events).to.deep.equal([
      'a started',
      'a ended',
      'b started',
      'b ended',
      'c started',
      'c ended',
      'late started',
    ]);
  });

  it('false: does not hold up the next request on the same keep-alive connection', async () => {
    const { app, rc } = appWith({ runAsync: false });
    const release = deferred();
    const sockets = new Set<unknown>();
    app.use(async (ctx) => {
      sockets.add(ctx.req.socket);
      if (ctx.path === '/first') ctx.raincheck(() => release.promise); // blocks until the second is answered
      ctx.body = ctx.path;
    });
    const { url, close } = await listen(app);
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      expect(
        await request(url)
          .get('/first')
          .agent(agent)
          .then((r) => r.text),
      ).to.equal('/first');
      expect(
        await request(url)
          .get('/second')
          .agent(agent)
          .then((r) => r.text),
      ).to.equal('/second');
      expect(rc.pending).to.equal(1);
      release.resolve();
      await rc.onIdle();
    } finally {
      agent.destroy();
      await close();
    }
    expect(sockets.size).to.equal(1);
  });
});

describe('raincheck({ immediate: true })', () => {
  it('runs each job the moment it is scheduled, before the response, deduped', async () => {
    const { app, rc } = appWith({ immediate: true });
    const timeline = new Timeline();
    app.use(async (ctx) => {
      const job = (n: number) => timeline.add(`job ${n}`);
      ctx.raincheck(job, 1);
      timeline.add('after first call');
      ctx.raincheck(job, 1);
      ctx.raincheck(job, 2);
      ctx.body = 'ok';
    });
    await request(app.callback()).get('/').expect(200);
    timeline.add('response');
    await rc.onIdle();
    expect(timeline.events).to.deep.equal(['job 1', 'after first call', 'job 2', 'response']);
  });

  it('still reports failures and never fails the request', async () => {
    const { app, rc, errors } = appWith({ immediate: true });
    app.use(async (ctx) => {
      ctx.raincheck(() => {
        throw new Error('now');
      });
      ctx.body = 'ok';
    });
    await request(app.callback()).get('/').expect(200, 'ok');
    await rc.onIdle();
    expect(errors.map(({ error }) => (error as Error).message)).to.deep.equal([
      'koa-raincheck: job anonymous() failed: now',
    ]);
  });
});
