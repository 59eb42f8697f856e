import { AsyncLocalStorage } from 'node:async_hooks';
import { once } from 'node:events';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import Koa from 'koa';
import request from 'supertest';
import { bullmq } from '../../src/adapters/bullmq.js';
import {
  jobReporter,
  jobSignal,
  type RaincheckJobError,
  type RaincheckOptions,
  raincheck,
  rainchecked,
  schedule,
} from '../../src/index.js';
import { appWith, deferred, listen } from '../helpers.js';

/** Two stores, as an app with a request-id store and a tenant store would have. */
const requestId = new AsyncLocalStorage<string>();
const tenant = new AsyncLocalStorage<string>();

/** What a job saw of both stores, at its start and again after an `await` that leaves its first tick. */
type Seen = { readonly job: string; readonly start: string; readonly afterAwait: string };

function seeing(name: string, seen: Seen[]): (...args: unknown[]) => Promise<void> {
  const stores = () => `${requestId.getStore()}/${tenant.getStore()}`;
  const job = async () => {
    const start = stores();
    await new Promise((resolve) => setTimeout(resolve, 1));
    seen.push({ job: name, start, afterAwait: stores() });
  };
  Object.defineProperty(job, 'name', { value: name });
  return job;
}

/** GET / over HTTP/1 or HTTP/2; resolves with the status once the response has been read. */
async function get(app: Koa, transport: 'HTTP/1' | 'HTTP/2'): Promise<number> {
  if (transport === 'HTTP/1') {
    const { url, close } = await listen(app);
    try {
      return (await request(url).get('/')).status;
    } finally {
      await close();
    }
  }
  const server = http2.createServer(app.callback());
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const client = http2.connect(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  try {
    const stream = client.request({ ':path': '/' });
    const [headers] = (await once(stream, 'response')) as [http2.IncomingHttpHeaders];
    stream.resume();
    await once(stream, 'end');
    return Number(headers[':status']);
  } finally {
    client.close();
    server.close();
    await once(server, 'close');
  }
}

const modes: ReadonlyArray<readonly [string, RaincheckOptions]> = [
  ['runAsync: true', { runAsync: true }],
  ['runAsync: false', { runAsync: false }],
  ['immediate: true', { immediate: true }],
];

describe('ctx.raincheck(fn, ...args) runs fn in the async context of the call', () => {
  for (const transport of ['HTTP/1', 'HTTP/2'] as const) {
    for (const [mode, options] of modes) {
      it(`${transport}, ${mode}: stores set around next(), around the call, with enterWith, late and nested`, async () => {
        const { app, rc } = appWith(options);
        const seen: Seen[] = [];
        const lateScheduled = deferred();
        // A store set upstream, around the rest of the chain, as request-id middleware does.
        app.use((_ctx, next) => requestId.run('req-1', next));
        app.use(async (ctx) => {
          await Promise.resolve(); // not on the first tick of the handler
          ctx.raincheck(seeing('aroundNext', seen));
          tenant.run('acme', () => ctx.raincheck(seeing('aroundCall', seen)));
          requestId.run('req-2', () =>
            ctx.raincheck(async function outer() {
              // From inside a job: the inner job gets the context of this call, in this job.
              await Promise.resolve();
              tenant.run('inner', () => ctx.raincheck(seeing('nested', seen)));
            }),
          );
          // After the response is over, from a continuation the handler made (so in its context): a late job.
          const closed = new Promise((resolve) => ctx.res.once('close', resolve));
          void closed
            .then(() => new Promise((resolve) => setImmediate(resolve)))
            .then(() => {
              tenant.run('late', () => ctx.raincheck(seeing('late', seen)));
              lateScheduled.resolve();
            });
          tenant.enterWith('entered');
          ctx.raincheck(seeing('afterEnterWith', seen));
          ctx.body = 'ok';
        });
        expect(await get(app, transport)).to.equal(200);
        await lateScheduled.promise;
        await rc.onIdle();
        const byJob = Object.fromEntries(seen.map((s) => [s.job, [s.start, s.afterAwait]]));
        expect(byJob).to.deep.equal({
          aroundNext: ['req-1/undefined', 'req-1/undefined'],
          aroundCall: ['req-1/acme', 'req-1/acme'],
          nested: ['req-2/inner', 'req-2/inner'],
          late: ['req-1/late', 'req-1/late'],
          afterEnterWith: ['req-1/entered', 'req-1/entered'],
        });
      });
    }
  }

  it('keeps the context of the first of identical calls: a collapsed call does not change it', async () => {
    const { app, rc } = appWith();
    const seen: Seen[] = [];
    const job = seeing('job', seen);
    const deduped: boolean[] = [];
    app.use(async (ctx) => {
      tenant.run('first', () => deduped.push(ctx.raincheck(job, 42).deduped));
      tenant.run('second', () => deduped.push(ctx.raincheck(job, 42).deduped));
      ctx.body = 'ok';
    });
    await get(app, 'HTTP/1');
    await rc.onIdle();
    expect(deduped).to.deep.equal([false, true]);
    expect(seen).to.deep.equal([{ job: 'job', start: 'undefined/first', afterAwait: 'undefined/first' }]);
  });

  it('does not let a job see a later store of its request, nor its context leak into the next request', async () => {
    const { app, rc } = appWith();
    const seen: Seen[] = [];
    let n = 0;
    app.use(async (ctx) => {
      const id = `req-${++n}`;
      requestId.run(id, () => ctx.raincheck(seeing(id, seen)));
      requestId.enterWith(`${id}-later`); // after the call: not the job's
      ctx.body = 'ok';
    });
    await get(app, 'HTTP/1');
    await get(app, 'HTTP/1');
    await rc.onIdle();
    expect(seen.map((s) => [s.job, s.start, s.afterAwait])).to.deep.equal([
      ['req-1', 'req-1/undefined', 'req-1/undefined'],
      ['req-2', 'req-2/undefined', 'req-2/undefined'],
    ]);
  });
});

describe('schedule(fn, ...args), fn.schedule() and adapters keep the context of the call', () => {
  it('through Koa asyncLocalStorage: the job sees the request ctx and the stores of its call', async () => {
    const app = new Koa({ asyncLocalStorage: true });
    const rc = raincheck();
    app.use(rc);
    app.use((_ctx, next) => requestId.run('req-1', next));
    const seen: Array<[string, string | undefined, string | undefined, boolean]> = [];
    const record = (how: string) => async () => {
      await Promise.resolve();
      seen.push([how, requestId.getStore(), tenant.getStore(), app.currentContext?.path === '/']);
    };
    const wrapped = rainchecked(record('wrapped'));
    const sent: Array<string | undefined> = [];
    const queue = bullmq({
      name: 'emails',
      add: async () => {
        await Promise.resolve();
        sent.push(tenant.getStore());
        return { id: '1' };
      },
    });
    app.use(async (ctx) => {
      tenant.run('a', () => schedule(record('schedule()')));
      tenant.run('b', () => wrapped.schedule());
      tenant.run('c', () => queue.schedule('welcome', { to: 'x' }));
      ctx.body = 'ok';
    });
    await get(app, 'HTTP/1');
    await rc.onIdle();
    expect(seen).to.deep.equal([
      ['schedule()', 'req-1', 'a', true],
      ['wrapped', 'req-1', 'b', true],
    ]);
    expect(sent).to.deep.equal(['c']);
  });
});

describe('raincheck({ keepContext: false })', () => {
  it('runs jobs in the context the response ended in: stores set around the call are not seen', async () => {
    const { app, rc } = appWith({ keepContext: false });
    const seen: Seen[] = [];
    app.use((_ctx, next) => requestId.run('req-1', next));
    app.use(async (ctx) => {
      tenant.run('acme', () => ctx.raincheck(seeing('aroundCall', seen)));
      ctx.body = 'ok';
    });
    await get(app, 'HTTP/1');
    await rc.onIdle();
    expect(seen).to.deep.equal([
      { job: 'aroundCall', start: 'undefined/undefined', afterAwait: 'undefined/undefined' },
    ]);
  });
});

describe('jobSignal() and jobReporter() with raincheck({ trackJobs: true })', () => {
  it('answer for the job after awaits and in callbacks it makes, and for each of two jobs apart', async () => {
    const { app, rc, errors } = appWith({ timeout: 10_000, trackJobs: true });
    const signals: Array<[string, AbortSignal]> = [];
    const job = (name: string) => async () => {
      await new Promise((resolve) => setTimeout(resolve, 1));
      signals.push([name, jobSignal()]);
      await new Promise<void>((resolve) =>
        setTimeout(() => {
          jobReporter()(new Error(`${name} attempt failed`));
          resolve();
        }, 1),
      );
    };
    const scheduled: Array<{ job: { signal: AbortSignal } }> = [];
    app.use(async (ctx) => {
      scheduled.push(ctx.raincheck(job('one')), ctx.raincheck(job('two')));
      ctx.body = 'ok';
    });
    await get(app, 'HTTP/1');
    await rc.onIdle();
    const byName = Object.fromEntries(signals);
    expect(byName.one).to.equal(scheduled[0]?.job.signal);
    expect(byName.two).to.equal(scheduled[1]?.job.signal);
    expect(errors.map((e) => (e.error as RaincheckJobError).message).sort()).to.deep.equal([
      'koa-raincheck: job anonymous() failed: one attempt failed',
      'koa-raincheck: job anonymous() failed: two attempt failed',
    ]);
    expect(errors.every((e) => e.ctx.path === '/')).to.equal(true);
  });

  it('throw a clear Error outside a job: in the handler, and in a callback of the request not in a job', async () => {
    expect(() => jobSignal()).to.throw(Error, /^jobSignal\(\) must be called inside a job/);
    expect(() => jobReporter()).to.throw(Error, /^jobReporter\(\) must be called inside a job/);
    const { app, rc } = appWith({ trackJobs: true });
    const thrown: unknown[] = [];
    const later = deferred();
    app.use(async (ctx) => {
      const read = () => {
        try {
          jobSignal();
        } catch (error) {
          thrown.push(error);
        }
      };
      read();
      ctx.raincheck(() => {});
      setTimeout(() => {
        read();
        later.resolve();
      }, 1);
      ctx.body = 'ok';
    });
    await get(app, 'HTTP/1');
    await later.promise;
    await rc.onIdle();
    expect(thrown.map(String)).to.have.length(2);
    for (const error of thrown) expect(String(error)).to.match(/must be called inside a job/);
  });
});

describe('jobSignal() and jobReporter() without trackJobs', () => {
  it('answer at the top of a job, and throw an Error naming trackJobs after an await', async () => {
    const { app, rc } = appWith();
    const results: string[] = [];
    app.use(async (ctx) => {
      ctx.raincheck(async () => {
        results.push(`top: ${jobSignal().aborted} ${typeof jobReporter()}`);
        await Promise.resolve();
        try {
          jobSignal();
        } catch (error) {
          results.push(String(error));
        }
      });
      ctx.body = 'ok';
    });
    await get(app, 'HTTP/1');
    await rc.onIdle();
    expect(results).to.have.length(2);
    expect(results[0]).to.equal('top: false function');
    expect(results[1]).to.match(/before its first await .* raincheck\(\{ trackJobs: true \}\)/);
  });
});

describe('jobSignal() and jobReporter() in jobs run inside each other', () => {
  for (const keepContext of [true, false]) {
    it(`answer for the innermost job, and for the outer one again after it (keepContext: ${keepContext})`, async () => {
      // immediate: a job scheduled inside a job runs inside it. The middle job is run at once by
      // schedule() outside a request (`outside: 'run'`), without a scope; the others in theirs, if kept.
      const { app, rc, errors } = appWith({ immediate: true, keepContext });
      const seen: Array<[string, AbortSignal]> = [];
      const handles: Record<string, { job: { signal: AbortSignal } }> = {};
      const middle = rainchecked(
        (ctx: Koa.Context) => {
          seen.push(['middle', jobSignal()]);
          handles.innermost = ctx.raincheck(() => {
            seen.push(['innermost', jobSignal()]);
            jobReporter()(new Error('innermost reports'));
          });
          seen.push(['middle again', jobSignal()]);
        },
        { outside: 'run' },
      );
      app.use(async (ctx) => {
        handles.outer = ctx.raincheck(() => {
          seen.push(['outer', jobSignal()]);
          handles.middle = middle.schedule(ctx);
          seen.push(['outer again', jobSignal()]);
        });
        ctx.body = 'ok';
      });
      await get(app, 'HTTP/1');
      await rc.onIdle();
      const signal = (name: string) => handles[name]?.job.signal;
      expect(seen.map(([name]) => name)).to.deep.equal([
        'outer',
        'middle',
        'innermost',
        'middle again',
        'outer again',
      ]);
      for (const [name, seenSignal] of seen) {
        expect(seenSignal, name).to.equal(signal(name.replace(' again', '')));
      }
      expect(errors.map((e) => String((e.error as Error).message))).to.deep.equal([
        'koa-raincheck: job anonymous() failed: innermost reports',
      ]);
    });
  }
});
