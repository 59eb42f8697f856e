import { expect } from 'chai';
import fc from 'fast-check';
import type Koa from 'koa';
import objectHash from 'object-hash';
import request from 'supertest';
import type { Scheduled } from '../../src/index.js';
import { appWith } from '../helpers.js';

// Abusive arguments: whatever a handler passes, ctx.raincheck() never throws, every job that is not a
// duplicate runs once, equal arguments (object-hash's equality) collapse, unequal ones do not.
describe('ctx.raincheck(fn, ...args) with arbitrary arguments', function () {
  this.timeout(60_000);

  const cyclic = () => {
    const a: Record<string, unknown> = { name: 'a' };
    a.self = a;
    return a;
  };
  const throwingGetter = () =>
    Object.defineProperty({ x: 1 }, 'boom', {
      enumerable: true,
      get() {
        throw new Error('getter');
      },
    });
  const deep = (depth: number) => {
    let value: unknown = 'bottom';
    for (let i = 0; i < depth; i++) value = { next: value };
    return value;
  };
  const awkward = fc.oneof(
    fc.anything({
      withMap: true,
      withSet: true,
      withDate: true,
      withBigInt: true,
      withTypedArray: true,
      withSparseArray: true,
      withNullPrototype: true,
      withBoxedValues: true,
      withObjectString: true,
    }),
    fc.constantFrom(undefined, Symbol('s'), Symbol.for('shared'), Number.NaN, -0),
    fc.uint8Array({ maxLength: 64 }).map((bytes) => Buffer.from(bytes)),
    fc.date({ noInvalidDate: false }),
    fc.constant(null).map(cyclic),
    fc.constant(null).map(throwingGetter),
    fc.constantFrom(40, 400, 12_000).map(deep), // object-hash gives up at about 10,000 levels
  );

  /** object-hash's verdict, or undefined when it cannot hash one of them. */
  function referenceEqual(a: unknown[], b: unknown[]): boolean | undefined {
    try {
      return objectHash(a) === objectHash(b);
    } catch {
      return undefined;
    }
  }

  it('never throws, runs each job once, and dedupes exactly the equal calls', async () => {
    const { app, rc, errors } = appWith();
    let cases: Array<{ a: unknown[]; b: unknown[] }> = [];
    const ran = new Map<number, number>();
    const results: Array<{ first: Scheduled; second: Scheduled; again: Scheduled } | Error> = [];
    app.use(async (ctx: Koa.Context) => {
      for (const [i, { a, b }] of cases.entries()) {
        const job = (...args: unknown[]) => {
          ran.set(i, (ran.get(i) ?? 0) + 1);
          return args.length;
        };
        try {
          results[i] = {
            first: ctx.raincheck(job, ...a),
            second: ctx.raincheck(job, ...b),
            again: ctx.raincheck(job, ...a), // the very same values: a duplicate when fingerprintable
          };
        } catch (error) {
          results[i] = error as Error;
        }
      }
      ctx.body = 'ok';
    });

    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.record({ a: fc.array(awkward, { maxLength: 3 }), b: fc.array(awkward, { maxLength: 3 }) }),
          {
            minLength: 1,
            maxLength: 8,
          },
        ),
        async (generated) => {
          cases = generated;
          results.length = 0;
          ran.clear();
          await request(app.callback()).get('/').expect(200);
          await rc.onIdle();
          for (const [i, { a, b }] of cases.entries()) {
            const result = results[i];
            if (result instanceof Error) throw result; // scheduling threw
            const { first, second, again } = result as Exclude<typeof result, Error | undefined>;
            const reference = referenceEqual(a, b);
            const fingerprinted = first.job.key !== undefined;
            // Each distinct job ran exactly once.
            const jobs = new Set([first.job, second.job, again.job]);
            expect(ran.get(i), `case ${i}`).to.equal(jobs.size);
            if (reference === undefined) continue; // object-hash cannot say: not deduped is right, and checked above
            expect(fingerprinted, `case ${i}: hashable arguments get a key`).to.equal(true);
            expect(again.deduped, `case ${i}: the same values again`).to.equal(true);
            expect(second.deduped, `case ${i}: equal per object-hash: ${reference}`).to.equal(reference);
          }
        },
      ),
      { numRuns: 60 },
    );
    expect(errors).to.deep.equal([]);
  });
});
