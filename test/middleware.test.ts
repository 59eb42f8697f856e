import assert from 'node:assert/strict';
import { expect } from 'chai';
import Koa from 'koa';
import request from 'supertest';
import raincheckDefault, { QUEUE, raincheck } from '../src/index.js';
import { appWith, deferred, Timeline } from './helpers.js';

describe('raincheck(options)', () => {
  it('returns a named middleware function, also the default export', () => {
    const middleware = raincheck();
    expect(middleware).to.be.a('function');
    expect(middleware.name).to.equal('raincheck');
    expect(raincheckDefault).to.equal(raincheck);
  });

  it('throws a TypeError naming the option, what was expected and what was given', () => {
    const cases: Array<[unknown, string]> = [
      ['fast', 'Expected `options` to be an object, got `string`'],
      [null, 'Expected `options` to be an object, got `null`'],
      [[], 'Expected `options` to be an object, got `array`'],
      [{ dedupe: 'yes' }, 'Expected `options.dedupe` to be a boolean, got `string`'],
      [{ runAsync: 1 }, 'Expected `options.runAsync` to be a boolean, got `number`'],
      [{ immediate: null }, 'Expected `options.immediate` to be a boolean, got `null`'],
      [{ runWhen: true }, 'Expected `options.runWhen` to be a function, got `boolean`'],
      [{ onError: 'log' }, 'Expected `options.onError` to be a function, got `string`'],
      [{ onDrop: {} }, 'Expected `options.onDrop` to be a function, got `object`'],
      [
        { runAsnyc: false },
        'Unknown option `runAsnyc`; expected one of `dedupe`, `runAsync`, `immediate`, `keepContext`, `trackJobs`, `coalesce`, `callSite`, `concurrency`, ' +
          '`maxWaiting`, `timeout`, `runWhen`, `onError`, `onDrop`',
      ],
      [{ concurrency: '10' }, 'Expected `options.concurrency` to be a number, got `string`'],
      [{ concurrency: 0 }, 'Expected `options.concurrency` to be a whole number >= 1, or Infinity, got `0`'],
      [
        { concurrency: 2.5 },
        'Expected `options.concurrency` to be a whole number >= 1, or Infinity, got `2.5`',
      ],
      [{ maxWaiting: -1 }, 'Expected `options.maxWaiting` to be a whole number >= 0, or Infinity, got `-1`'],
      [
        { maxWaiting: Number.NaN },
        'Expected `options.maxWaiting` to be a whole number >= 0, or Infinity, got `NaN`',
      ],
      [{ timeout: 0 }, 'Expected `options.timeout` to be a positive number of ms, got `0`'],
      [{ timeout: -5 }, 'Expected `options.timeout` to be a positive number of ms, got `-5`'],
    ];
    for (const [options, message] of cases) {
      expect(() => raincheck(options as never), String(message)).to.throw(TypeError, message);
    }
  });

  it('accepts undefined for any option, meaning its default', async () => {
    const { app, rc } = appWith({ dedupe: undefined, runAsync: undefined, onError: undefined });
    const ran: number[] = [];
    app.use(async (ctx) => {
      ctx.raincheck((n: number) => ran.push(n), 1);
      ctx.raincheck((n: number) => ran.push(n), 1);
      ctx.body = 'ok';
    });
    await request(app.callback()).get('/').expect(200);
    await rc.onIdle();
    expect(ran).to.deep.equal([1, 1]); // two different arrow functions: two jobs
  });

  it('runs jobs once when mounted twice; the outer one owns the request', async () => {
    const outer = raincheck();
    const inner = raincheck({ immediate: true });
    const app = new Koa();
    app.use(outer).use(inner);
    const ran: string[] = [];
    let finishedBeforeJob: boolean | undefined;
    app.use(async (ctx) => {
      ctx.raincheck(() => {
        finishedBeforeJob = ctx.res.writableFinished;
        ran.push('job');
      });
      ctx.body = 'ok';
    });
    await request(app.callback()).get('/').expect(200);
    await outer.onIdle();
    expect(ran).to.deep.equal(['job']);
    expect(finishedBeforeJob).to.equal(true); // the outer, non-immediate instance ran it
    expect(inner.pending).to.equal(0);
  });

  it('leaves ctx.state as it was: deep-equal to {} and copied without the queue, which is read at ctx[QUEUE]', async () => {
    const { app, rc } = appWith();
    let state: Record<string | symbol, unknown> = {};
    let queue: unknown;
    app.use(async (ctx) => {
      ctx.raincheck(() => {});
      // As Koa's own test suite asserts, inside the request: a failure answers 500.
      assert.deepStrictEqual(ctx.state, {});
      state = ctx.state;
      queue = (ctx as unknown as Record<symbol, unknown>)[QUEUE];
      ctx.body = 'ok';
    });
    await request(app.callback()).get('/').expect(200);
    await rc.onIdle();
    expect(state).to.deep.equal({});
    expect(() => assert.deepStrictEqual(state, {})).to.not.throw();
    expect(Reflect.ownKeys({ ...state })).to.deep.equal([]);
    expect(Reflect.ownKeys(Object.assign({}, state))).to.deep.equal([]);
    expect(Reflect.ownKeys(state)).to.deep.equal([]);
    expect(queue).to.be.an('object');
  });

  describe('.onIdle() and .pending', () => {
    it('count a job from the moment it is scheduled until it settles', async () => {
      const { app, rc } = appWith();
      const inHandler = deferred<number>();
      const started = deferred();
      const release = deferred();
      const timeline = new Timeline();
      app.use(async (ctx) => {
        ctx.raincheck(async () => {
          started.resolve();
          await release.promise;
          timeline.add('job settled');
        });
        ctx.raincheck(() => {});
        inHandler.resolve(rc.pending);
        ctx.body = 'ok';
      });
      await request(app.callback()).get('/').expect(200);
      expect(await inHandler.promise).to.equal(2);
      const idle = rc.onIdle().then(() => timeline.add('idle'));
      await started.promise; // after the response, the job provably runs: nothing is idle
      expect(rc.pending).to.equal(1);
      expect(rc.stats).to.include({ running: 1 });
      expect(timeline.events).to.deep.equal([]);
      release.resolve();
      await idle;
      // Whenever onIdle() resolved, it was after the job had settled.
      expect(timeline.events).to.deep.equal(['job settled', 'idle']);
      expect(rc.pending).to.equal(0);
    });

    it('resolves at once when nothing is pending', async () => {
      await raincheck().onIdle();
    });

    it('counts dropped jobs as settled', async () => {
      const { app, rc } = appWith({ onDrop: () => {} });
      app.use(async (ctx) => {
        ctx.raincheck(() => {});
        ctx.status = 500;
      });
      await request(app.callback()).get('/').expect(500);
      await rc.onIdle();
      expect(rc.pending).to.equal(0);
    });

    it('belongs to one middleware: another app’s jobs do not hold it up', async () => {
      const a = appWith();
      const b = appWith();
      const release = deferred();
      b.app.use(async (ctx) => {
        ctx.raincheck(() => release.promise);
        ctx.body = 'b';
      });
      a.app.use(async (ctx) => {
        ctx.raincheck(() => {});
        ctx.body = 'a';
      });
      await request(b.app.callback()).get('/');
      await request(a.app.callback()).get('/');
      await a.rc.onIdle();
      expect(b.rc.pending).to.equal(1);
      release.resolve();
      await b.rc.onIdle();
    });
  });
});
