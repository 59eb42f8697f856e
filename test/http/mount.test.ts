import { expect } from 'chai';
import Koa from 'koa';
import mount from 'koa-mount';
import request from 'supertest';
import { RaincheckJobError, raincheck, schedule } from '../../src/index.js';

/** A parent app that mounts `sub` under /sub with koa-mount; both apps' 'error' events collected. */
function mounted(sub: Koa, parentOptions?: ConstructorParameters<typeof Koa>[0]) {
  const parent = new Koa(parentOptions);
  const parentErrors: unknown[] = [];
  const subErrors: unknown[] = [];
  parent.on('error', (error: unknown) => parentErrors.push(error));
  sub.on('error', (error: unknown) => subErrors.push(error));
  parent.use(mount('/sub', sub));
  return { parent, parentErrors, subErrors };
}

async function sendReport(): Promise<void> {
  await Promise.resolve();
  throw new Error('smtp down');
}

describe('raincheck() in a sub-app mounted with koa-mount', () => {
  it("reports a job's failure to the parent app's 'error' event, as the sub-app's own errors are", async () => {
    const sub = new Koa();
    const rc = raincheck();
    sub.use(rc);
    sub.use(async (ctx) => {
      if (ctx.path === '/throw') throw new Error('handler failed');
      ctx.raincheck(sendReport);
      ctx.body = { app: ctx.app === sub ? 'sub' : 'parent' };
    });
    const { parent, parentErrors, subErrors } = mounted(sub);
    // Inside koa-mount the request's ctx is the parent's: ctx.app is the parent app.
    await request(parent.callback()).get('/sub/report').expect(200, { app: 'parent' });
    await rc.onIdle();
    expect(rc.stats).to.include({ failed: 1 });
    expect(parentErrors).to.have.length(1);
    expect(parentErrors[0]).to.be.instanceOf(RaincheckJobError);
    expect((parentErrors[0] as RaincheckJobError).job.name).to.equal('sendReport');
    expect(subErrors).to.deep.equal([]);
    // The same app as an error thrown by the sub-app's middleware.
    await request(parent.callback()).get('/sub/throw').expect(500);
    expect(parentErrors).to.have.length(2);
    expect(subErrors).to.deep.equal([]);
  });

  it("reports to the sub-app's 'error' event when onError emits it there", async () => {
    const sub = new Koa();
    const rc = raincheck({ onError: (error, _job, ctx) => sub.emit('error', error, ctx) });
    sub.use(rc);
    sub.use(async (ctx) => {
      ctx.raincheck(sendReport);
      ctx.body = 'ok';
    });
    const { parent, parentErrors, subErrors } = mounted(sub);
    await request(parent.callback()).get('/sub/report').expect(200);
    await rc.onIdle();
    expect(subErrors).to.have.length(1);
    expect(subErrors[0]).to.be.instanceOf(RaincheckJobError);
    expect(parentErrors).to.deep.equal([]);
  });

  it("finds the request for schedule() through the parent app's asyncLocalStorage, not the sub-app's", async () => {
    const run = async (parentStorage: boolean) => {
      const sub = new Koa({ asyncLocalStorage: true });
      const rc = raincheck();
      sub.use(rc);
      const thrown: string[] = [];
      sub.use(async (ctx) => {
        try {
          schedule(() => {});
        } catch (error) {
          thrown.push((error as Error).name);
        }
        ctx.body = 'ok';
      });
      const { parent } = mounted(sub, { asyncLocalStorage: parentStorage });
      await request(parent.callback()).get('/sub/x').expect(200);
      await rc.onIdle();
      return { thrown, succeeded: rc.stats.succeeded };
    };
    expect(await run(true)).to.deep.equal({ thrown: [], succeeded: 1 });
    expect(await run(false)).to.deep.equal({ thrown: ['RaincheckOutsideRequestError'], succeeded: 0 });
  });
});
