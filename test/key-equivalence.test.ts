import { expect } from 'chai';
import fc from 'fast-check';
import objectHash from 'object-hash';
import { dedupeKey, fingerprintOf, keyOf, sameFingerprint } from '../src/key.js';

// object-hash is the reference for which arguments are equal. The fast paths (primitives compared one by
// one, plain data serialised without object-hash) must agree with it on every pair of argument lists.
describe('dedupeKey(fn, args) and object-hash', () => {
  const fn = () => {};
  const primitive = fc.oneof(
    fc.string({ maxLength: 6 }),
    fc.constantFrom('', '1', 'a,b', 's1:a', 'n1;', 'u', 'z', '[', '{', 't', 'f'),
    fc.integer({ min: -3, max: 3 }),
    fc.constantFrom(0, -0, Number.NaN, Number.POSITIVE_INFINITY, 1.5, 1e21),
    fc.boolean(),
    fc.constant(null),
    fc.constant(undefined),
    fc.bigInt({ min: -2n, max: 2n }),
  );
  const plain = fc.letrec((tie) => ({
    value: fc.oneof({ depthSize: 'small' }, primitive, tie('array'), tie('object')),
    array: fc.array(tie('value'), { maxLength: 4 }),
    object: fc.dictionary(fc.constantFrom('a', 'b', 'c', '1', 'a b'), tie('value'), { maxKeys: 4 }),
  })).value;
  const args = fc.array(plain, { maxLength: 4 });

  /** Equal under object-hash, the reference. */
  const referenceEqual = (a: unknown[], b: unknown[]) => objectHash(a) === objectHash(b);
  /** Equal under the dedupe key, by both ways the queue compares. */
  const keysEqual = (a: unknown[], b: unknown[]) => dedupeKey(fn, a) === dedupeKey(fn, b);
  const fingerprintsEqual = (a: unknown[], b: unknown[]) => {
    const fa = fingerprintOf(a);
    const fb = fingerprintOf(b);
    return fa !== undefined && fb !== undefined && sameFingerprint(fa, fb);
  };

  it('agrees with object-hash on arbitrary plain arguments', () => {
    fc.assert(
      fc.property(args, args, (a, b) => {
        const reference = referenceEqual(a, b);
        expect(keysEqual(a, b), 'key').to.equal(reference);
        expect(fingerprintsEqual(a, b), 'fingerprint').to.equal(reference);
      }),
      { numRuns: 3000 },
    );
  });

  it('agrees with object-hash on a value and a reordered or slightly changed copy of it', () => {
    const reorder = (value: unknown): unknown => {
      if (Array.isArray(value)) return value.map(reorder);
      if (value !== null && typeof value === 'object') {
        const copy = Object.create(Object.getPrototypeOf(value)); // fast-check also makes null-prototype ones
        for (const [k, v] of Object.entries(value).reverse()) copy[k] = reorder(v);
        return copy;
      }
      return value;
    };
    fc.assert(
      fc.property(args, plain, (a, extra) => {
        const copy = reorder(a) as unknown[];
        expect(keysEqual(a, copy)).to.equal(true);
        expect(fingerprintsEqual(a, copy)).to.equal(true);
        const changed = [...a, extra];
        expect(keysEqual(a, changed)).to.equal(referenceEqual(a, changed));
      }),
      { numRuns: 2000 },
    );
  });

  it('makes the same key from a fingerprint as from the arguments', () => {
    fc.assert(
      fc.property(args, (a) => {
        const fingerprint = fingerprintOf(a);
        expect(fingerprint).to.not.equal(undefined);
        expect(keyOf(fn, fingerprint as NonNullable<typeof fingerprint>)).to.equal(dedupeKey(fn, a));
      }),
    );
  });
});
