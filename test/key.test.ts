import { expect } from 'chai';
import objectHash from 'object-hash';
import { dedupeKey } from '../src/key.js';

describe('dedupeKey(fn, args)', () => {
  const fn = () => {};
  const other = () => {};

  it('is equal for the same function and equal arguments', () => {
    expect(dedupeKey(fn, ['a', 1, true, null, undefined, 2n])).to.equal(
      dedupeKey(fn, ['a', 1, true, null, undefined, 2n]),
    );
    expect(dedupeKey(fn, [{ a: 1, b: [1, 2] }])).to.equal(dedupeKey(fn, [{ b: [1, 2], a: 1 }]));
    expect(dedupeKey(fn, [new Map([['a', 1]])])).to.equal(dedupeKey(fn, [new Map([['a', 1]])]));
  });

  it('differs for another function with the same source', () => {
    expect(dedupeKey(fn, ['a'])).to.not.equal(dedupeKey(other, ['a']));
    expect(dedupeKey(fn, [{ a: 1 }])).to.not.equal(dedupeKey(other, [{ a: 1 }]));
  });

  it('follows object-hash on which primitives are equal', () => {
    const pairs: Array<[unknown, unknown]> = [
      [0, -0],
      [Number.NaN, Number.NaN],
      [1, '1'],
      ['', undefined],
      [null, undefined],
      [true, 'true'],
      [1n, 1],
    ];
    for (const [a, b] of pairs) {
      const reference = objectHash([a]) === objectHash([b]);
      expect(dedupeKey(fn, [a]) === dedupeKey(fn, [b]), `${String(a)} vs ${String(b)}`).to.equal(reference);
    }
  });

  it('does not let string contents imitate a separator', () => {
    expect(dedupeKey(fn, ['a', 'b'])).to.not.equal(dedupeKey(fn, ['a,b']));
    expect(dedupeKey(fn, ['s1:a'])).to.not.equal(dedupeKey(fn, ['a', 'a']));
    expect(dedupeKey(fn, ['ab', ''])).to.not.equal(dedupeKey(fn, ['a', 'b']));
  });

  it('keeps keys short for long strings', () => {
    const key = dedupeKey(fn, ['x'.repeat(100_000)]);
    expect(key?.length).to.be.lessThan(64);
    expect(key).to.not.equal(dedupeKey(fn, [`${'x'.repeat(99_999)}y`]));
  });

  it("is undefined for a Proxy at any depth, on the plain-data path as on object-hash's", () => {
    const transparent = new Proxy({ a: 1 }, {});
    // A Proxy can answer each read differently: a fingerprint of one could be made to lie.
    let reads = 0;
    const shifty = new Proxy({} as Record<string, number>, {
      ownKeys: () => ['a'],
      getOwnPropertyDescriptor: () => ({ value: reads, enumerable: true, configurable: true }),
      get: () => reads++,
    });
    const lists: unknown[][] = [
      [transparent],
      ['x', 1, transparent],
      [{ nested: [transparent] }],
      [new Proxy([1, 2], {})],
      [shifty],
      [transparent, new Date(0)],
      [Symbol.for('s'), transparent],
      [new Map([['k', transparent]])],
    ];
    for (const args of lists) expect(dedupeKey(fn, args), String(lists.indexOf(args))).to.equal(undefined);
    // A function is compared by identity, a Proxy of one too: identity cannot lie.
    const proxied = new Proxy(fn, {});
    expect(dedupeKey(fn, [proxied])).to.equal(dedupeKey(fn, [proxied]));
    expect(dedupeKey(fn, [proxied])).to.not.equal(dedupeKey(fn, [fn]));
  });

  it('is undefined, never a throw, for arguments object-hash cannot take', () => {
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    const throwing = Object.defineProperty({}, 'x', {
      enumerable: true,
      get() {
        throw new Error('no');
      },
    });
    for (const arg of [Promise.resolve(), new AbortController().signal, new WeakMap(), throwing]) {
      expect(dedupeKey(fn, [arg])).to.equal(undefined);
    }
    expect(dedupeKey(fn, [cyclic])).to.be.a('string'); // object-hash handles cycles
  });
});
