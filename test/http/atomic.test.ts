// atomic() and RaincheckTransaction over real HTTP, with transactions that are plain promises: one that
// resolves is a commit, one that rejects a rollback (what knex, Kysely and Drizzle do; the same cases
// against real PostgreSQL are in test/transactions/).
import diagnostics_channel from 'node:diagnostics_channel';
import { expect } from 'chai';
import Koa from 'koa';
import request from 'supertest';
import {
  atomic,
  type DropReason,
  type Job,
  RaincheckTransaction,
  raincheck,
  schedule,
} from '../../src/index.js';
import { appWith, deferred } from '../helpers.js';

/** An app whose drops are recorded with their reason. */
function appWithDrops() {
  const drops: Array<{ name: string; reason: DropReason }> = [];
  const made = appWith({
    onDrop: (job: Job, _outcome, _ctx, reason) => drops.push({ name: job.name, reason }),
  });
  return { ...made, drops };
}

/** A transaction that commits: resolves after a turn of the event loop, as a database's would. */
const commits = <T>(fn: () => T) => new Promise<T>((resolve) => setImmediate(() => resolve(fn())));
/** A transaction that rolls back: `fn` runs, then the transaction rejects. */
const rollsBack = (fn: () => unknown) =>
  new Promise((_, reject) =>
    setImmediate(() => {
      fn();
      reject(new Error('deadlock detected'));
    }),
  );

describe('atomic(fn)', () => {
  it('keeps the jobs of a transaction that commits, and runs them after the response', async () => {
    const { app, rc, drops } = appWithDrops();
    const ran: string[] = [];
    app.use(async (ctx) => {
      const id = await atomic(() =>
        commits(() => {
          ctx.raincheck(function confirm() {
            ran.push('confirm');
          });
          return 7; // what the transaction resolves with, atomic() too
        }),
      );
      ctx.body = { id };
    });
    await request(app.callback()).get('/').expect(200, { id: 7 });
    await rc.onIdle();
    expect(ran).to.deep.equal(['confirm']);
    expect(drops).to.deep.equal([]);
  });

  it('drops the jobs of a transaction that rolls back, even when the handler catches it and answers 200', async () => {
    const { app, rc, drops } = appWithDrops();
    const ran: string[] = [];
    app.use(async (ctx) => {
      ctx.raincheck(function audit() {
        ran.push('audit');
      }); // outside: kept
      try {
        await atomic(() =>
          rollsBack(() =>
            ctx.raincheck(function sendConfirmation() {
              ran.push('confirmation');
            }),
          ),
        );
      } catch {
        ctx.body = { queued: false };
      }
    });
    await request(app.callback()).get('/').expect(200, { queued: false });
    await rc.onIdle();
    expect(ran).to.deep.equal(['audit']);
    expect(drops).to.deep.equal([{ name: 'sendConfirmation', reason: 'rolledBack' }]);
    expect(rc.stats).to.include({ scheduled: 2, succeeded: 1, dropped: 1, awaitingResponse: 0 });
  });

  it('passes the rejection on, and a synchronous throw of fn as a rejection', async () => {
    const failure = new Error('no');
    await atomic(() => Promise.reject(failure)).then(
      () => expect.fail('resolved'),
      (error: unknown) => expect(error).to.equal(failure),
    );
    await atomic(() => {
      throw failure;
    }).then(
      () => expect.fail('resolved'),
      (error: unknown) => expect(error).to.equal(failure),
    );
  });

  it('throws a TypeError at the call site when fn is not a function', () => {
    expect(() => atomic('BEGIN' as never)).to.throw(
      TypeError,
      'Expected `fn` to be a function, got `string`',
    );
  });

  it('nests like savepoints: an inner rollback drops the inner jobs, an outer one drops all', async () => {
    const { app, rc, drops } = appWithDrops();
    const ran: string[] = [];
    const job = (name: string) => Object.defineProperty(() => ran.push(name), 'name', { value: name });
    app.use(async (ctx) => {
      if (ctx.path === '/inner') {
        await atomic(async () => {
          ctx.raincheck(job('outer'));
          await atomic(() => rollsBack(() => ctx.raincheck(job('inner')))).catch(() => {});
          await atomic(() => commits(() => ctx.raincheck(job('innerKept'))));
        });
      } else {
        await atomic(async () => {
          ctx.raincheck(job('outer'));
          await atomic(() => commits(() => ctx.raincheck(job('innerCommitted'))));
          throw new Error('outer rolls back');
        }).catch(() => {});
      }
      ctx.body = 'ok';
    });
    await request(app.callback()).get('/inner').expect(200);
    await rc.onIdle();
    expect(ran).to.deep.equal(['outer', 'innerKept']);
    expect(drops).to.deep.equal([{ name: 'inner', reason: 'rolledBack' }]);
    ran.length = 0;
    drops.length = 0;
    await request(app.callback()).get('/outer').expect(200);
    await rc.onIdle();
    expect(ran).to.deep.equal([]);
    expect(drops.map((d) => `${d.name}:${d.reason}`)).to.deep.equal([
      'outer:rolledBack',
      'innerCommitted:rolledBack',
    ]);
  });

  it('holds the jobs of a transaction still open when the response ends, and onIdle()/drain() wait for it', async () => {
    const { app, rc } = appWithDrops();
    const ran: string[] = [];
    const commit = deferred();
    const scheduled = deferred();
    app.use((ctx) => {
      void atomic(async () => {
        ctx.raincheck(function afterCommit() {
          ran.push('afterCommit');
        });
        scheduled.resolve();
        await commit.promise;
      });
      ctx.body = 'ok';
    });
    await request(app.callback()).get('/').expect(200);
    await scheduled.promise;
    const result = await rc.drain({ timeout: 30 });
    expect(result.drained).to.equal(false);
    expect(result.unfinished.map((j) => [j.name, j.state, j.held])).to.deep.equal([
      ['afterCommit', 'waiting', true],
    ]);
    expect(rc.pending).to.equal(1);
    let idle = false;
    const idled = rc.onIdle().then(() => {
      idle = true;
    });
    await new Promise((resolve) => setImmediate(resolve));
    expect(idle).to.equal(false);
    commit.resolve();
    await idled;
    expect(ran).to.deep.equal(['afterCommit']);
  });

  it('drops a held job once its transaction rolls back after the response, with the reason, on job:end too', async () => {
    const { app, rc, drops } = appWithDrops();
    const ends: unknown[] = [];
    const onEnd = (message: unknown) => {
      const { job, state } = message as { job: Job; state: string };
      ends.push([job.name, state]);
    };
    diagnostics_channel.subscribe('koa-raincheck:job:end', onEnd);
    try {
      const rollback = deferred();
      app.use((ctx) => {
        void atomic(async () => {
          ctx.raincheck(function charge() {});
          await rollback.promise;
          throw new Error('serialization failure');
        }).catch(() => {});
        ctx.body = 'ok';
      });
      await request(app.callback()).get('/').expect(200);
      expect(rc.pending).to.equal(1);
      rollback.resolve();
      await rc.onIdle();
      expect(drops).to.deep.equal([{ name: 'charge', reason: 'rolledBack' }]);
      expect(ends).to.deep.equal([['charge', 'dropped']]);
      expect(rc.stats).to.include({ dropped: 1, awaitingResponse: 0 });
    } finally {
      diagnostics_channel.unsubscribe('koa-raincheck:job:end', onEnd);
    }
  });

  it('covers jobs scheduled from timers the transaction function started', async () => {
    const { app, rc, drops } = appWithDrops();
    app.use(async (ctx) => {
      await atomic(
        () =>
          new Promise((_, reject) =>
            setTimeout(() => {
              ctx.raincheck(function fromTimer() {});
              reject(new Error('rolled back'));
            }, 1),
          ),
      ).catch(() => {});
      ctx.body = 'ok';
    });
    await request(app.callback()).get('/').expect(200);
    await rc.onIdle();
    expect(drops).to.deep.equal([{ name: 'fromTimer', reason: 'rolledBack' }]);
  });

  it("covers schedule() without ctx (Koa's asyncLocalStorage)", async () => {
    const app = new Koa({ asyncLocalStorage: true });
    const drops: DropReason[] = [];
    const rc = raincheck({ onDrop: (_job, _outcome, _ctx, reason) => drops.push(reason) });
    app.use(rc);
    const ran: string[] = [];
    app.use(async (ctx) => {
      await atomic(() => commits(() => schedule(() => ran.push('kept'))));
      await atomic(() => rollsBack(() => schedule(() => ran.push('rolled back')))).catch(() => {});
      ctx.body = 'ok';
    });
    await request(app.callback()).get('/').expect(200);
    await rc.onIdle();
    expect(ran).to.deep.equal(['kept']);
    expect(drops).to.deep.equal(['rolledBack']);
  });

  describe('with dedupe', () => {
    it('loses no job to a collapsed call whose transaction rolled back: the one that committed runs it', async () => {
      const { app, rc, drops } = appWithDrops();
      const ran: string[] = [];
      const notify = (id: number) => ran.push(`notify ${id}`);
      app.use(async (ctx) => {
        // Both transactions are open when their identical calls are made: the second collapses into the
        // first's job. The first rolls back, the second commits: the job is the first call's, and runs.
        const bothScheduled = deferred();
        const firstSettled = deferred();
        const first = atomic(async () => {
          ctx.raincheck(notify, 1);
          await bothScheduled.promise;
          throw new Error('rolled back');
        }).catch(() => firstSettled.resolve());
        const second = atomic(async () => {
          const call = ctx.raincheck(notify, 1);
          bothScheduled.resolve();
          await firstSettled.promise;
          return call.deduped;
        });
        const [, deduped] = await Promise.all([first, second]);
        ctx.body = { deduped };
      });
      await request(app.callback()).get('/').expect(200, { deduped: true });
      await rc.onIdle();
      expect(ran).to.deep.equal(['notify 1']);
      expect(drops).to.deep.equal([]);
      expect(rc.stats).to.include({ scheduled: 1, deduped: 1, succeeded: 1, dropped: 0 });
    });

    it('lets an identical call outside any transaction keep a job whose transaction rolls back later', async () => {
      const { app, rc, drops } = appWithDrops();
      const ran: string[] = [];
      const notify = (id: number) => ran.push(`notify ${id}`);
      app.use(async (ctx) => {
        const scheduled = deferred();
        const tx = atomic(async () => {
          ctx.raincheck(notify, 1);
          await scheduled.promise;
          throw new Error('rolled back');
        }).catch(() => {});
        const outside = ctx.raincheck(notify, 1);
        scheduled.resolve();
        await tx;
        ctx.body = { deduped: outside.deduped };
      });
      await request(app.callback()).get('/').expect(200, { deduped: true });
      await rc.onIdle();
      expect(ran).to.deep.equal(['notify 1']);
      expect(drops).to.deep.equal([]);
    });

    it('drops the job when every identical call rolled back, and a later identical call makes a new one', async () => {
      const { app, rc, drops } = appWithDrops();
      const ran: string[] = [];
      const notify = (id: number) => ran.push(`notify ${id}`);
      app.use(async (ctx) => {
        await atomic(() => rollsBack(() => [ctx.raincheck(notify, 1), ctx.raincheck(notify, 1)])).catch(
          () => {},
        );
        ctx.body = { deduped: ctx.raincheck(notify, 1).deduped };
      });
      await request(app.callback()).get('/').expect(200, { deduped: false });
      await rc.onIdle();
      expect(ran).to.deep.equal(['notify 1']);
      expect(drops).to.deep.equal([{ name: 'notify', reason: 'rolledBack' }]);
    });
  });
});

describe('RaincheckTransaction (BEGIN/COMMIT written by hand)', () => {
  it('holds the jobs scheduled in run() until commit(), and drops them on rollback()', async () => {
    const { app, rc, drops } = appWithDrops();
    const ran: string[] = [];
    app.use(async (ctx) => {
      const tx = new RaincheckTransaction();
      await tx.run(async () => {
        ctx.raincheck(function insertDone() {
          ran.push(ctx.path);
        });
      });
      expect(tx.state).to.equal('open');
      if (ctx.path === '/commit') tx.commit();
      else tx.rollback();
      expect(() => tx.commit()).to.throw(Error, /already/);
      ctx.body = tx.state;
    });
    await request(app.callback()).get('/commit').expect(200, 'committed');
    await request(app.callback()).get('/rollback').expect(200, 'rolledBack');
    await rc.onIdle();
    expect(ran).to.deep.equal(['/commit']);
    expect(drops).to.deep.equal([{ name: 'insertDone', reason: 'rolledBack' }]);
  });

  it("keeps requests apart: each request's transaction holds only its own jobs", async () => {
    const { app, rc } = appWithDrops();
    const ran: string[] = [];
    app.use(async (ctx) => {
      const id = String(ctx.query.id);
      const tx = new RaincheckTransaction();
      tx.run(() => ctx.raincheck((which: string) => ran.push(which), id));
      await new Promise((resolve) => setImmediate(resolve));
      if (Number(id) % 2 === 0) tx.commit();
      else tx.rollback();
      ctx.body = id;
    });
    await Promise.all(
      Array.from({ length: 20 }, (_, i) => request(app.callback()).get(`/?id=${i}`).expect(200)),
    );
    await rc.onIdle();
    expect(ran.sort((a, b) => Number(a) - Number(b))).to.deep.equal([
      '0',
      '2',
      '4',
      '6',
      '8',
      '10',
      '12',
      '14',
      '16',
      '18',
    ]);
    expect(rc.stats).to.include({ succeeded: 10, dropped: 10 });
  });
});
