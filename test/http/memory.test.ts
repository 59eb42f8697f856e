import { expect } from 'chai';
import Koa from 'koa';
import request from 'supertest';
import { raincheck } from '../../src/index.js';
import { appWith, conservativeStack, deferred, gatedOn, gc } from '../helpers.js';

/**
 * Lets the current job end (a WeakRef keeps its target until then), then collects garbage; with `refs`,
 * again (five rounds at most) while one of them still holds its target, for what lets go a turn later (a socket's
 * last events under load). A leak holds it through every round.
 */
async function collectGarbage(...refs: Array<WeakRef<object> | undefined>): Promise<void> {
  for (let round = 0; round < 5; round++) {
    await new Promise(setImmediate);
    gc();
    if (refs.every((ref) => ref?.deref() === undefined)) return;
  }
}

describe('ctx.raincheck(fn, ...args) and memory', () => {
  it("keeps the request's ctx while its job runs, and lets it go once the job has settled", async () => {
    const { app, rc } = appWith();
    const finish = deferred();
    let ctxRef: WeakRef<object> | undefined;
    app.use((ctx) => {
      ctxRef = new WeakRef(ctx);
      // Node's Date-header cache makes a timer that lives up to a second in the context of the response
      // that first needs it: not the library's to hold, and not what this test is about.
      ctx.res.sendDate = false;
      ctx.raincheck(() => finish.promise); // a job that does not close over ctx
      ctx.body = 'ok';
    });
    await request(app.callback()).get('/').expect(200);
    await collectGarbage();
    expect(ctxRef?.deref(), 'ctx while the job runs').to.not.equal(undefined);
    finish.resolve();
    await rc.onIdle();
    await collectGarbage(ctxRef);
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

describe(".coalesce({ ttl }) and memory, with Koa's asyncLocalStorage", () => {
  // With callSite, each job also captured the stack of its scheduling call, whose frames hold the ctx.
  for (const options of [{}, { callSite: true }]) {
    it(`lets go of the ctx of 20 requests whose coalescing jobs succeeded, while their ttl still runs (${JSON.stringify(options)})`, async () => {
      const app = new Koa({ asyncLocalStorage: true });
      app.on('error', () => {});
      const rc = raincheck(options);
      app.use(rc);
      const refs: Array<WeakRef<object>> = [];
      const refreshed: number[] = [];
      // Module-level in spirit: the job's function and arguments reach nothing of the request.
      const refresh = (id: number) => {
        refreshed.push(id);
      };
      app.use(async (ctx) => {
        refs.push(new WeakRef(ctx));
        // Node caches the Date header for up to a second with a timer made in the request that formatted
        // it, which keeps that request's async context, Koa's store: not the library's doing.
        ctx.res.sendDate = false;
        ctx.raincheck(refresh, Number(ctx.query.id)).coalesce({ ttl: 60_000 });
        ctx.body = 'ok';
      });
      for (let id = 0; id < 20; id++) await request(app.callback()).get(`/?id=${id}`).expect(200);
      await rc.onIdle();
      expect(rc.stats).to.include({ succeeded: 20, coalesced: 0 });
      await collectGarbage(...refs);
      // A leak keeps all 20. On Bun one may outlive gc() on a stale stack slot (conservativeStack): seen in
      // CI and in one of three runs here, never two.
      const allowed = gatedOn('bun', `one ctx of 20 allowed to survive gc(): ${conservativeStack}`) ? 1 : 0;
      expect(
        refs.filter((ref) => ref.deref() !== undefined),
        'ctx objects still reachable',
      ).to.have.length.at.most(allowed);
      // Within their ttl the jobs still absorb identical ones: what was let go is only what they no longer need.
      await request(app.callback()).get('/?id=7').expect(200);
      await rc.onIdle();
      expect(rc.stats).to.include({ succeeded: 20, coalesced: 1 });
      expect(refreshed).to.have.length(20);
    });
  }
});
