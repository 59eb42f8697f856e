import { expect } from 'chai';
import request from 'supertest';
import { appWith, conservativeStack, deferred, gatedOn, gc } from '../helpers.js';

/** Lets the current job end (a WeakRef keeps its target until then), then collects garbage. */
async function collectGarbage(): Promise<void> {
  await new Promise(setImmediate);
  gc();
}

describe('ctx.raincheck(fn, ...args) and memory', () => {
  it("keeps the request's ctx while its job runs, and lets it go once the job has settled", async () => {
    const { app, rc } = appWith();
    const finish = deferred();
    let ctxRef: WeakRef<object> | undefined;
    app.use((ctx) => {
      ctxRef = new WeakRef(ctx);
      ctx.raincheck(() => finish.promise); // a job that does not close over ctx
      ctx.body = 'ok';
    });
    await request(app.callback()).get('/').expect(200);
    await collectGarbage();
    expect(ctxRef?.deref(), 'ctx while the job runs').to.not.equal(undefined);
    finish.resolve();
    await rc.onIdle();
    await collectGarbage();
    if (gatedOn('bun', `ctx collected once its job settled, not checked: ${conservativeStack}`)) return;
    expect(ctxRef?.deref(), 'ctx after the job settled').to.equal(undefined);
  });
});

describe('raincheck({ concurrency }) and memory', () => {
  it("lets go of a job's request once it has started from the waiting list, while later jobs still wait", async () => {
    const { app, rc } = appWith({ concurrency: 1 });
    const blockerStarted = deferred();
    const releaseBlocker = deferred();
    const holdStarted = deferred();
    const releaseHold = deferred();
    const refs = new Map<string, WeakRef<object>>();
    app.use(async (ctx) => {
      const role = String(ctx.query.role);
      refs.set(role, new WeakRef(ctx));
      // None of the jobs closes over ctx: only the library could keep it.
      if (role === 'blocker') {
        ctx.raincheck(async () => {
          blockerStarted.resolve();
          await releaseBlocker.promise;
        });
      } else if (role === 'quick') ctx.raincheck(() => {});
      else if (role === 'hold') {
        ctx.raincheck(async () => {
          holdStarted.resolve();
          await releaseHold.promise;
        });
      } else ctx.raincheck(() => {}); // 'last': still waiting at the check
      ctx.body = role;
    });
    await request(app.callback()).get('/?role=blocker').expect(200);
    await blockerStarted.promise;
    for (const role of ['quick', 'hold', 'last']) await request(app.callback()).get(`/?role=${role}`);
    expect(rc.stats).to.include({ running: 1, waiting: 3 });
    releaseBlocker.resolve();
    // 'quick' started from the waiting list and ended; 'hold' started after it, and runs; 'last' waits.
    await holdStarted.promise;
    expect(rc.stats).to.include({ running: 1, waiting: 1, succeeded: 2 });
    await collectGarbage();
    const gated = gatedOn('bun', `a started job's ctx collected, not checked: ${conservativeStack}`);
    if (!gated) {
      const quick = refs.get('quick')?.deref();
      expect(quick, 'the ctx of a job started from the waiting list, and ended').to.equal(undefined);
    }
    expect(refs.get('last')?.deref(), 'the ctx of a job still waiting').to.not.equal(undefined);
    releaseHold.resolve();
    await rc.onIdle();
  });
});
