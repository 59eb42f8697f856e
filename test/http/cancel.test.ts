import { expect } from 'chai';
import request from 'supertest';
import type { DropReason, Job, ResponseOutcome, Scheduled } from '../../src/index.js';
import { appWith, deferred } from '../helpers.js';

type Drop = { job: string; status: number; reason: DropReason };

/** An app whose onDrop calls are recorded, with the options given. */
function recordingDrops(options: Parameters<typeof appWith>[0] = {}) {
  const drops: Drop[] = [];
  const setup = appWith({
    ...options,
    onDrop: (job: Job, outcome: ResponseOutcome, _ctx: unknown, reason: DropReason) => {
      drops.push({ job: job.name, status: outcome.status, reason });
    },
  });
  return { ...setup, drops };
}

function named(name: string, body: (...args: never[]) => unknown): (...args: unknown[]) => unknown {
  Object.defineProperty(body, 'name', { value: name });
  return body as (...args: unknown[]) => unknown;
}

describe('scheduled.cancel()', () => {
  it('takes back a job before the response: not run, counted as dropped, reported with its reason', async () => {
    const { app, rc, drops } = recordingDrops();
    const ran: string[] = [];
    const returned: boolean[] = [];
    app.use(async (ctx) => {
      const welcome = ctx.raincheck(named('welcome', () => ran.push('welcome')));
      ctx.raincheck(named('audit', () => ran.push('audit')));
      returned.push(welcome.cancel(), welcome.cancel());
      ctx.body = 'ok';
    });
    await request(app.callback()).get('/').expect(200);
    await rc.onIdle();
    expect(returned).to.deep.equal([true, false]);
    expect(ran).to.deep.equal(['audit']);
    expect(drops).to.deep.equal([{ job: 'welcome', status: 200, reason: 'cancelled' }]);
    expect(rc.stats).to.include({ scheduled: 2, succeeded: 1, dropped: 1 });
  });

  it('returns false on a job that already started, and changes nothing', async () => {
    const { app, rc, drops } = recordingDrops();
    const started = deferred();
    const release = deferred();
    let scheduled: Scheduled | undefined;
    app.use(async (ctx) => {
      scheduled = ctx.raincheck(async () => {
        started.resolve();
        await release.promise;
      });
      ctx.body = 'ok';
    });
    await request(app.callback()).get('/').expect(200);
    await started.promise;
    expect(scheduled?.cancel()).to.equal(false);
    expect(scheduled?.job.signal.aborted).to.equal(false);
    release.resolve();
    await rc.onIdle();
    expect(scheduled?.job.state).to.equal('succeeded');
    expect(drops).to.deep.equal([]);
  });

  it('cancels a job shared by collapsed calls only when every call took it back', async () => {
    const { app, rc, drops } = recordingDrops();
    const ran: number[] = [];
    const refresh = named('refresh', () => ran.push(1));
    const returned: boolean[] = [];
    const states: string[] = [];
    app.use(async (ctx) => {
      const first = ctx.raincheck(refresh, 42);
      const second = ctx.raincheck(refresh, 42);
      returned.push(first.cancel()); // the second call still wants it
      returned.push(second.cancel()); // now nobody does
      const third = ctx.raincheck(refresh, 42); // a new job, not the cancelled one
      states.push(String(second.deduped), String(third.deduped), String(third.job === first.job));
      ctx.body = 'ok';
    });
    await request(app.callback()).get('/').expect(200);
    await rc.onIdle();
    expect(returned).to.deep.equal([false, true]);
    expect(states).to.deep.equal(['true', 'false', 'false']);
    expect(ran).to.deep.equal([1]); // the third call's job
    expect(drops).to.deep.equal([{ job: 'refresh', status: 200, reason: 'cancelled' }]);
  });

  it('drops a job waiting for a slot at once, and the slot goes to the next one', async () => {
    const { app, rc, drops } = recordingDrops({ concurrency: 1 });
    const release = deferred();
    const started = deferred();
    const ran: string[] = [];
    const calls: Scheduled[] = [];
    app.use(async (ctx) => {
      calls.push(
        ctx.raincheck(
          named('blocker', async () => {
            started.resolve();
            await release.promise;
            ran.push('blocker');
          }),
        ),
        ctx.raincheck(named('second', () => ran.push('second'))),
        ctx.raincheck(named('third', () => ran.push('third'))),
      );
      ctx.body = 'ok';
    });
    await request(app.callback()).get('/').expect(200);
    await started.promise;
    expect(rc.stats).to.include({ running: 1, waiting: 2 });
    expect(calls[1]?.cancel()).to.equal(true);
    expect(rc.stats).to.include({ running: 1, waiting: 1, dropped: 1 });
    expect(drops).to.deep.equal([{ job: 'second', status: 200, reason: 'cancelled' }]);
    release.resolve();
    await rc.onIdle();
    expect(ran).to.deep.equal(['blocker', 'third']);
  });

  it('returns false with immediate: true, where a job is handed over as it is scheduled', async () => {
    const { app, rc } = recordingDrops({ immediate: true, concurrency: 1 });
    const ran: string[] = [];
    const release = deferred();
    const returned: boolean[] = [];
    app.use(async (ctx) => {
      ctx.raincheck(
        named('first', async () => {
          await release.promise;
          ran.push('first');
        }),
      );
      returned.push(ctx.raincheck(named('second', () => ran.push('second'))).cancel()); // waits for the slot
      ctx.body = 'ok';
    });
    await request(app.callback()).get('/').expect(200);
    release.resolve();
    await rc.onIdle();
    expect(returned).to.deep.equal([false]);
    expect(ran).to.deep.equal(['first', 'second']);
  });

  it('ignores .coalesce() and .timeout() after .cancel(): the next identical call makes a job of its own', async () => {
    const { app, rc, drops } = recordingDrops();
    const ran: number[] = [];
    const refresh = named('refresh', () => ran.push(1));
    app.use(async (ctx) => {
      const first = ctx.raincheck(refresh, 7);
      first.cancel();
      first.coalesce().timeout(50); // too late: taken back
      const again = ctx.raincheck(refresh, 7);
      ctx.body = String(again.deduped);
    });
    const response = await request(app.callback()).get('/').expect(200);
    await rc.onIdle();
    expect(response.text).to.equal('false');
    expect(ran).to.deep.equal([1]);
    expect(drops.map((d) => d.reason)).to.deep.equal(['cancelled']);
  });

  it('with runAsync: false, skips the cancelled job and goes on with the chain', async () => {
    const { app, rc, drops } = recordingDrops({ runAsync: false });
    const ran: string[] = [];
    app.use(async (ctx) => {
      ctx.raincheck(named('a', () => ran.push('a')));
      ctx.raincheck(named('b', () => ran.push('b'))).cancel();
      ctx.raincheck(named('c', () => ran.push('c')));
      ctx.body = 'ok';
    });
    await request(app.callback()).get('/').expect(200);
    await rc.onIdle();
    expect(ran).to.deep.equal(['a', 'c']);
    expect(drops.map((d) => d.job)).to.deep.equal(['b']);
  });
});

describe('.timeout(ms) and .always() on collapsed calls', () => {
  const slowJob = named('slow', () => new Promise((resolve) => setTimeout(resolve, 60))); // past 20-40 ms timeouts

  it('keeps the longest timeout asked: a later call cannot shorten it', async () => {
    const { app, rc, errors } = appWith();
    app.use(async (ctx) => {
      ctx.raincheck(slowJob, 1).timeout(5_000);
      ctx.raincheck(slowJob, 1).timeout(20);
      ctx.body = 'ok';
    });
    await request(app.callback()).get('/').expect(200);
    await rc.onIdle();
    expect(errors).to.deep.equal([]);
    expect(rc.stats).to.include({ succeeded: 1, timedOut: 0, deduped: 1 });
  });

  it('counts a call without .timeout() as asking for the option: a collapsed call cannot shorten that', async () => {
    const { app, rc, errors } = appWith({ timeout: 5_000 });
    app.use(async (ctx) => {
      ctx.raincheck(slowJob, 2);
      ctx.raincheck(slowJob, 2).timeout(20);
      ctx.raincheck(slowJob, 5).timeout(20); // the first asks 20 ms, the collapsed one the option's
      ctx.raincheck(slowJob, 5);
      ctx.body = 'ok';
    });
    await request(app.callback()).get('/').expect(200);
    await rc.onIdle();
    expect(errors).to.deep.equal([]);
    expect(rc.stats).to.include({ succeeded: 2, timedOut: 0 });
  });

  it('lengthens the option from a collapsed call, and still times out past the longest', async () => {
    const { app, rc, errors } = appWith({ timeout: 20, onError: () => {} });
    app.use(async (ctx) => {
      ctx.raincheck(slowJob, 3);
      ctx.raincheck(slowJob, 3).timeout(5_000);
      ctx.raincheck(slowJob, 4).timeout(30);
      ctx.raincheck(slowJob, 4).timeout(40);
      ctx.body = 'ok';
    });
    await request(app.callback()).get('/').expect(200);
    await rc.onIdle();
    expect(errors).to.deep.equal([]);
    expect(rc.stats).to.include({ succeeded: 1, timedOut: 1 });
  });

  it('runs the shared job of a failed request when any of its calls asked .always()', async () => {
    const { app, rc } = appWith({ onDrop: () => {} });
    const ran: number[] = [];
    const audit = named('audit', () => ran.push(1));
    app.use(async (ctx) => {
      ctx.raincheck(audit, 'x');
      ctx.raincheck(audit, 'x').always();
      ctx.status = 500;
    });
    await request(app.callback()).get('/').expect(500);
    await rc.onIdle();
    expect(ran).to.deep.equal([1]);
  });
});
