import { expect } from 'chai';
import type Koa from 'koa';
import request from 'supertest';
import type { Scheduled } from '../../src/index.js';
import { appWith, gatedOn } from '../helpers.js';

describe('raincheck({ dedupe })', () => {
  /** Runs one request whose handler schedules through `schedule`, and returns what ran, in order. */
  async function ranIn(
    schedule: (ctx: Koa.Context, ran: unknown[][]) => void,
    options: Parameters<typeof appWith>[0] = {},
  ): Promise<unknown[][]> {
    const { app, rc, errors } = appWith(options);
    const ran: unknown[][] = [];
    app.use(async (ctx) => {
      schedule(ctx, ran);
      ctx.body = 'ok';
    });
    await request(app.callback()).get('/').expect(200, 'ok');
    await rc.onIdle();
    expect(errors).to.deep.equal([]);
    return ran;
  }

  it('runs identical calls once, the first one keeping its place in the order', async () => {
    const ran = await ranIn((ctx, ran) => {
      const a = (...args: unknown[]) => ran.push(['a', ...args]);
      const b = (...args: unknown[]) => ran.push(['b', ...args]);
      ctx.raincheck(a, 1, 'x');
      ctx.raincheck(b, 1, 'x');
      ctx.raincheck(a, 2, 'x');
      ctx.raincheck(a, 1, 'x');
      ctx.raincheck(b, 1, 'x');
    });
    expect(ran).to.deep.equal([
      ['a', 1, 'x'],
      ['b', 1, 'x'],
      ['a', 2, 'x'],
    ]);
  });

  it('treats objects with the same keys in another order as equal', async () => {
    const ran = await ranIn((ctx, ran) => {
      const save = (record: object) => ran.push([record]);
      ctx.raincheck(save, { a: 1, b: 2, nested: { x: [1, 2], y: 'y' } });
      ctx.raincheck(save, { nested: { y: 'y', x: [1, 2] }, b: 2, a: 1 });
      ctx.raincheck(save, { a: 1, b: 2, nested: { x: [2, 1], y: 'y' } }); // arrays are ordered
    });
    expect(ran).to.have.length(2);
  });

  it('tells apart arguments that only look alike', async () => {
    const ran = await ranIn((ctx, ran) => {
      const job = (...args: unknown[]) => ran.push(args);
      ctx.raincheck(job, 1);
      ctx.raincheck(job, '1');
      ctx.raincheck(job, 'a,b');
      ctx.raincheck(job, 'a', 'b');
      ctx.raincheck(job, null);
      ctx.raincheck(job, undefined);
      ctx.raincheck(job);
      ctx.raincheck(job, true);
      ctx.raincheck(job, 1n);
    });
    expect(ran).to.have.length(9);
  });

  it('keeps two closures with the same source and different captured values apart', async () => {
    const ran = await ranIn((ctx, ran) => {
      const makeJob = (who: string) => () => ran.push([who]);
      ctx.raincheck(makeJob('alice'));
      ctx.raincheck(makeJob('bob'));
    });
    expect(ran).to.deep.equal([['alice'], ['bob']]);
  });

  it('keeps calls apart whose arguments hold different functions with the same source', async () => {
    const ran = await ranIn((ctx, ran) => {
      const notify = (callback: () => void, options: { onDone: () => void }) => {
        callback();
        options.onDone();
      };
      const callbackFor = (who: string) => () => ran.push([who]);
      const alice = callbackFor('alice');
      const bob = callbackFor('bob');
      ctx.raincheck(notify, alice, { onDone: alice });
      ctx.raincheck(notify, bob, { onDone: bob });
      ctx.raincheck(notify, alice, { onDone: alice }); // the same functions: a duplicate
    });
    expect(ran).to.deep.equal([['alice'], ['alice'], ['bob'], ['bob']]);
  });

  it('runs, without deduping, calls whose arguments cannot be fingerprinted', async () => {
    const returned: Scheduled[] = [];
    const ran = await ranIn((ctx, ran) => {
      const job = (...args: unknown[]) => ran.push([args.length]);
      const throwingGetter = Object.defineProperty({}, 'boom', {
        enumerable: true,
        get() {
          throw new Error('getter');
        },
      });
      const promise = Promise.resolve(1);
      const signal = new AbortController().signal;
      // Deno's IncomingMessage and ServerResponse are plain JavaScript objects, which object-hash walks,
      // where Node's and Bun's have native getters that throw ("Illegal invocation"): there ctx has a
      // fingerprint, and its two calls collapse.
      const ctxUnhashable = !gatedOn('deno', 'ctx as an argument: object-hash fingerprints it there');
      for (const arg of [promise, signal, ...(ctxUnhashable ? [ctx] : []), throwingGetter, new WeakMap()]) {
        returned.push(ctx.raincheck(job, arg), ctx.raincheck(job, arg));
      }
    });
    expect(ran).to.have.length(returned.length);
    expect(returned.length).to.be.at.least(8);
    expect(returned.every((s) => !s.deduped && s.job.key === undefined)).to.equal(true);
  });

  it('runs, without deduping, calls with a Proxy among their arguments, whatever its neighbours', async () => {
    const returned: Record<string, Scheduled[]> = {};
    const ran = await ranIn((ctx, ran) => {
      const job = (...args: unknown[]) => ran.push(args);
      const record = new Proxy({ id: 1 }, {}); // transparent: reads as { id: 1 }
      const list = new Proxy([1, 2], {});
      // The same Proxy twice, among plain arguments (the plain-data path) and beside a Date or a Symbol
      // (object-hash's path): the documented rule, a Proxy is not fingerprinted, on both.
      const calls: Record<string, unknown[]> = {
        'among plain arguments': ['a', 1, record],
        'nested in plain data': [{ records: [record] }],
        'a Proxy of an array': [list, 'x'],
        'beside a Date': [record, new Date(0)],
        'beside a Symbol': [Symbol.for('s'), record],
      };
      for (const [name, args] of Object.entries(calls)) {
        returned[name] = [ctx.raincheck(job, ...args), ctx.raincheck(job, ...args)];
      }
    });
    expect(ran).to.have.length(10);
    for (const [name, calls] of Object.entries(returned)) {
      expect(
        calls.map((call) => [call.deduped, call.job.key]),
        name,
      ).to.deep.equal([
        [false, undefined],
        [false, undefined],
      ]);
    }
  });

  it('collapses a late call into an identical one made earlier in the request', async () => {
    const ran = await ranIn((ctx, ran) => {
      const job = (n: number) => {
        ran.push([n]);
        ctx.raincheck(job, 1); // identical to the call that scheduled this job: collapsed
        if (n === 1) ctx.raincheck(job, 2);
      };
      ctx.raincheck(job, 1);
    });
    expect(ran).to.deep.equal([[1], [2]]);
  });

  it('dedupes as well in a request with many jobs (looked up by key past the first sixteen)', async () => {
    const ran = await ranIn((ctx, ran) => {
      const job = (n: number, tag: { n: number }) => ran.push([n, tag.n]);
      const other = (n: number) => ran.push(['other', n]);
      for (let round = 0; round < 3; round++) {
        for (let n = 0; n < 40; n++) {
          ctx.raincheck(job, n, { n });
          ctx.raincheck(other, n);
        }
      }
    });
    expect(ran).to.have.length(80);
    expect(ran.slice(0, 4)).to.deep.equal([
      [0, 0],
      ['other', 0],
      [1, 1],
      ['other', 1],
    ]);
  });

  it('runs every call with dedupe: false', async () => {
    const ran = await ranIn(
      (ctx, ran) => {
        const job = (n: number) => ran.push([n]);
        ctx.raincheck(job, 1);
        ctx.raincheck(job, 1);
        ctx.raincheck(job, 1);
      },
      { dedupe: false },
    );
    expect(ran).to.deep.equal([[1], [1], [1]]);
  });

  it('never dedupes across requests', async () => {
    const { app, rc } = appWith();
    const ran: string[] = [];
    const job = (who: string) => ran.push(who);
    app.use(async (ctx) => {
      ctx.raincheck(job, 'same');
      ctx.body = 'ok';
    });
    await request(app.callback()).get('/');
    await request(app.callback()).get('/');
    await rc.onIdle();
    expect(ran).to.deep.equal(['same', 'same']);
  });
});
