// Behaviour that worked but that no test checked: each test here failed against a deliberate bug put in the
// source (docs: /work/briefs/h13-notes.md lists them).
import { expect } from 'chai';
import request from 'supertest';
import type { Job, ResponseOutcome, Scheduled } from '../../src/index.js';
import { appWith, deferred } from '../helpers.js';

describe('rc.stats', () => {
  it('counts as waiting only the jobs still waiting, not the ones started from the waiting list', async () => {
    const { app, rc } = appWith({ concurrency: 1 });
    const started = [deferred(), deferred(), deferred(), deferred()];
    const release = [deferred(), deferred(), deferred(), deferred()];
    app.use(async (ctx) => {
      for (const n of [0, 1, 2, 3]) {
        ctx.raincheck(async (i: number) => {
          started[i]?.resolve();
          await release[i]?.promise;
        }, n);
      }
      ctx.body = 'ok';
    });
    await request(app.callback()).get('/').expect(200);
    await started[0]?.promise;
    expect(rc.stats).to.include({ running: 1, waiting: 3 });
    release[0]?.resolve();
    await started[1]?.promise; // the first of the waiting jobs has started: two are left waiting
    expect(rc.stats).to.include({ running: 1, waiting: 2 });
    release[1]?.resolve();
    await started[2]?.promise;
    expect(rc.stats).to.include({ running: 1, waiting: 1 });
    for (const r of release) r.resolve();
    await rc.onIdle();
    expect(rc.stats).to.include({ running: 0, waiting: 0, succeeded: 4 });
  });
});

describe('raincheck({ dedupe: false })', () => {
  it('fingerprints nothing: no argument is read, and no job has a key', async () => {
    const { app, rc } = appWith({ dedupe: false });
    let reads = 0;
    // What a fingerprint would read; the job itself never does.
    const watched = Object.defineProperty({}, 'user', {
      enumerable: true,
      get: () => {
        reads++;
        return 'ann';
      },
    });
    const returned: Scheduled[] = [];
    app.use(async (ctx) => {
      returned.push(ctx.raincheck((_record: object) => {}, watched));
      returned.push(ctx.raincheck((_record: object, _n: number) => {}, watched, 1));
      ctx.body = 'ok';
    });
    await request(app.callback()).get('/').expect(200);
    await rc.onIdle();
    expect(reads).to.equal(0);
    expect(returned.map((s) => s.job.key)).to.deep.equal([undefined, undefined]);
    expect(rc.stats).to.include({ succeeded: 2 });
  });
});

describe('raincheck({ onDrop }) that throws or rejects', () => {
  const escaped: unknown[] = [];
  const onEscape = (error: unknown) => escaped.push(error);
  beforeEach(() => {
    escaped.length = 0;
    process.on('uncaughtException', onEscape);
    process.on('unhandledRejection', onEscape);
  });
  afterEach(() => {
    process.off('uncaughtException', onEscape);
    process.off('unhandledRejection', onEscape);
  });

  it('is contained: a RAINCHECK_HOOK_FAILED warning each time, and every other job still dropped and reported', async () => {
    const warnings: Array<Error & { code?: string }> = [];
    const twoWarnings = deferred();
    const onWarning = (warning: Error & { code?: string }) => {
      if (warning.code !== 'RAINCHECK_HOOK_FAILED') return;
      warnings.push(warning);
      if (warnings.length === 2) twoWarnings.resolve();
    };
    process.on('warning', onWarning);
    try {
      const reported: string[] = [];
      const { app, rc } = appWith({
        onDrop: (job: Job) => {
          reported.push(job.name);
          if (job.name === 'first') throw new Error('onDrop broke');
          if (job.name === 'second') return Promise.reject(new Error('onDrop rejected'));
          return undefined;
        },
      });
      const ran: string[] = [];
      app.use(async (ctx) => {
        ctx.raincheck(function first() {
          ran.push('first');
        });
        ctx.raincheck(function second() {
          ran.push('second');
        });
        ctx.raincheck(function third() {
          ran.push('third');
        });
        ctx.status = 500;
      });
      await request(app.callback()).get('/').expect(500);
      await rc.onIdle();
      await twoWarnings.promise;
      expect(reported).to.deep.equal(['first', 'second', 'third']);
      expect(ran).to.deep.equal([]);
      expect(rc.stats).to.include({ dropped: 3, running: 0 });
      expect(warnings.map((w) => w.message)).to.deep.equal([
        'koa-raincheck: onDrop threw: onDrop broke',
        'koa-raincheck: onDrop threw: onDrop rejected',
      ]);
      expect(escaped).to.deep.equal([]);
    } finally {
      process.off('warning', onWarning);
    }
  });
});

describe('ctx.raincheck(fn, ...args) scheduled after the response, by a request that scheduled earlier', () => {
  /** A request that schedules `early`, and `late` once the response is over; resolves once both are in. */
  async function earlyAndLate(status: number) {
    const outcomes: ResponseOutcome[] = [];
    const dropped: Array<{ name: string; outcome: ResponseOutcome }> = [];
    const { app, rc } = appWith({
      runWhen: (outcome) => {
        outcomes.push(outcome);
        return outcome.status < 400;
      },
      onDrop: (job, outcome) => dropped.push({ name: job.name, outcome }),
    });
    const ran: string[] = [];
    const lateScheduled = deferred();
    app.use(async (ctx) => {
      ctx.raincheck(function early() {
        ran.push('early');
      });
      // After raincheck()'s own 'close' listener (added once the downstream settled) has run.
      ctx.res.once('close', () =>
        setImmediate(() => {
          ctx.raincheck(function late() {
            ran.push('late');
          });
          lateScheduled.resolve();
        }),
      );
      ctx.status = status;
      ctx.body = 'body';
    });
    await request(app.callback()).get('/').expect(status);
    await lateScheduled.promise;
    await rc.onIdle();
    return { outcomes, dropped, ran, rc };
  }

  it('runs the late job under the outcome the earlier ones ran under', async () => {
    const { outcomes, dropped, ran } = await earlyAndLate(200);
    expect(ran).to.deep.equal(['early', 'late']);
    expect(dropped).to.deep.equal([]);
    expect(outcomes).to.have.length(2);
    expect(outcomes[1]).to.equal(outcomes[0]); // the same outcome, not one made again
  });

  it('drops the late job of a failed request, reported with the same outcome', async () => {
    const { outcomes, dropped, ran, rc } = await earlyAndLate(404);
    expect(ran).to.deep.equal([]);
    expect(dropped.map((d) => d.name)).to.deep.equal(['early', 'late']);
    expect(dropped[1]?.outcome).to.equal(dropped[0]?.outcome);
    expect(dropped[0]?.outcome).to.include({ status: 404, threw: false });
    expect(outcomes).to.have.length(2);
    expect(rc.stats).to.include({ dropped: 2, succeeded: 0 });
  });
});

describe('rc.drain({ timeout }) and late jobs that are not deduped', () => {
  const cases: Array<[string, Parameters<typeof appWith>[0], unknown]> = [
    ['with dedupe: false', { dedupe: false }, 1],
    ['with an argument that cannot be fingerprinted', {}, new WeakMap()],
  ];
  for (const [what, options, argument] of cases) {
    it(`names a late job still running when it gives up (${what})`, async () => {
      const { app, rc } = appWith(options);
      const lateStarted = deferred();
      const release = deferred();
      app.use(async (ctx) => {
        ctx.raincheck(function first() {
          // Scheduled from a running job: after the response, kept apart from the request's list.
          ctx.raincheck(async function stuckLate(_arg: unknown) {
            lateStarted.resolve();
            await release.promise;
          }, argument);
        });
        ctx.body = 'ok';
      });
      await request(app.callback()).get('/').expect(200);
      await lateStarted.promise;
      const result = await rc.drain({ timeout: 50 });
      expect(result.drained).to.equal(false);
      expect(result.unfinished.map((job) => [job.name, job.state])).to.deep.equal([['stuckLate', 'running']]);
      expect(result.unfinished[0]?.args).to.deep.equal([argument]);
      release.resolve();
      await rc.onIdle();
    });
  }
});
