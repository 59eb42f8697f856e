import Router from '@koa/router';
import { expect } from 'chai';
import type Koa from 'koa';
import request from 'supertest';
import { appWith } from '../helpers.js';

describe('ctx.raincheck(fn, ...args) with @koa/router', () => {
  it('schedules from route handlers and runs after the response', async () => {
    const { app, rc } = appWith();
    const ran: string[] = [];
    const router = new Router();
    router.post('/users/:id/welcome', async (ctx: Koa.Context) => {
      const scheduled = ctx.raincheck((id: string) => ran.push(`welcome ${id}`), ctx.params.id ?? '');
      ctx.status = 202;
      ctx.body = { deduped: scheduled.deduped };
    });
    router.get('/missing', async (ctx: Koa.Context) => {
      ctx.raincheck(() => ran.push('never'));
      ctx.throw(404);
    });
    app.use(router.routes());
    await request(app.callback()).post('/users/7/welcome').expect(202, { deduped: false });
    await request(app.callback()).get('/missing').expect(404);
    await rc.onIdle();
    expect(ran).to.deep.equal(['welcome 7']);
  });

  it('works when raincheck() is mounted on a router instead of the app', async () => {
    const { app: bare } = appWith();
    bare.middleware.length = 0; // no app-level raincheck(): only the router's
    const { raincheck } = await import('../../src/index.js');
    const rc = raincheck();
    const router = new Router();
    router.use(rc);
    const ran: string[] = [];
    router.get('/', async (ctx: Koa.Context) => {
      ctx.raincheck(() => ran.push('job'));
      ctx.body = 'ok';
    });
    bare.use(router.routes());
    await request(bare.callback()).get('/').expect(200);
    await rc.onIdle();
    expect(ran).to.deep.equal(['job']);
  });
});
