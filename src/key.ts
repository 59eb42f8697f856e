import { createHash } from 'node:crypto';
import { types } from 'node:util';
import objectHash from 'object-hash';

const { isProxy } = types;

/**
 * What two calls of the same function are compared by: their arguments themselves when all are primitives
 * (compared one by one, with no string built), otherwise a string.
 */
export type Fingerprint = readonly unknown[] | string;

/**
 * The fingerprint of a call's arguments, or `undefined` when they cannot be fingerprinted (a Promise, an
 * AbortSignal, Koa's `ctx`, a getter that throws, ...): such a call is simply not deduped, and never fails.
 *
 * Equality is object-hash's, which stays the reference for what counts as equal: object keys in any order,
 * arrays in order, `0` equal to `-0`, `NaN` to `NaN`. Plain JSON-like data is serialised here, much faster
 * than object-hash; anything else (class instances, Maps, Dates, Buffers, ...) goes through object-hash.
 * Functions, at any depth, compare by identity, not source: object-hash alone would merge two closures with
 * the same code and different captured values.
 */
export function fingerprintOf(args: readonly unknown[]): Fingerprint | undefined {
  // The common case inline, the rest apart: a short function is one V8 inlines into its callers.
  return allPrimitives(args) ? args : serialised(args);
}

function serialised(args: readonly unknown[]): string | undefined {
  try {
    const plain = plainKey(args);
    if (plain !== undefined) return `j${shorten(plain)}`;
    return `o${objectHash(args as unknown[], { replacer: argumentReplacer })}`;
  } catch {
    return undefined;
  }
}

/** Whether two fingerprints of the same function's calls are equal. */
export function sameFingerprint(a: Fingerprint, b: Fingerprint): boolean {
  if (typeof a === 'string' || typeof b === 'string') return a === b;
  return samePrimitives(a, b);
}

/**
 * Whether `fingerprint` (a job's) is that of `args`, arguments that are all primitives, and so their own
 * fingerprint: compared one by one in place.
 */
export function samePrimitives(fingerprint: Fingerprint | undefined, args: readonly unknown[]): boolean {
  if (typeof fingerprint !== 'object' || fingerprint.length !== args.length) return false;
  for (let i = 0; i < args.length; i++) {
    const x = fingerprint[i];
    const y = args[i];
    // biome-ignore lint/suspicious/noSelfCompare: NaN is the one value not equal to itself
    if (x !== y && (x === x || y === y)) return false;
  }
  return true;
}

/** The dedupe key as a string: equal exactly when the function is the same and the fingerprints are equal. */
export function keyOf(fn: object, fingerprint: Fingerprint): string {
  const id = functionId(fn);
  if (typeof fingerprint === 'string') return `${id}${fingerprint}`;
  return `${id}p${shorten(plainKey(fingerprint) as string)}`;
}

/** The dedupe key of `fn(...args)`, or `undefined` when the call is not deduped. */
export function dedupeKey(fn: object, args: readonly unknown[]): string | undefined {
  const fingerprint = fingerprintOf(args);
  return fingerprint === undefined ? undefined : keyOf(fn, fingerprint);
}

/**
 * On every `ctx.raincheck()`, so written for V8: an index rather than `for...of` (whose iterator protocol
 * is much more bytecode, which counts against inlining); `typeof` compared in place (kept in a variable,
 * it is made as a string first, a builtin call per argument); strings first, the commonest and cheapest
 * test (`typeof x === 'object'` checks null, undetectable objects and a range of types).
 */
export function allPrimitives(args: readonly unknown[]): boolean {
  for (let i = 0; i < args.length; i++) {
    const value = args[i];
    if (typeof value === 'string') continue;
    if ((typeof value === 'object' && value !== null) || typeof value === 'symbol') return false;
  }
  return true;
}

const functionIds = new WeakMap<object, number>();
let lastFunctionId = 0;

function functionId(fn: object): number {
  let id = functionIds.get(fn);
  if (id === undefined) {
    id = ++lastFunctionId;
    functionIds.set(fn, id);
  }
  return id;
}

/**
 * @internal The object-hash replacer of the arguments. object-hash calls it for every value it reaches,
 * nested ones, Map entries and Set members included (object keys and its own strings too), and hashes what
 * it returns as it is. A function becomes `f` and its id, a string `s` and itself: so no argument, however
 * chosen, hashes as a function (a job would be lost to a forged duplicate).
 *
 * object-hash also writes some values without length or escape (an Error's text, a Buffer's bytes, a
 * RegExp, a Date's `toJSON()`, a URL, a wrapper's `toString()`, an array's `length`), picked by the
 * object's `Symbol.toStringTag`, which any object can claim: bytes that could line up with a function's.
 * Those values become tagged strings here, read through the built-ins' own brand-checked methods, so that
 * every byte object-hash writes is its own or in a length-prefixed string. A look-alike that is not what
 * its tag says, a Proxy, or a tag behind a getter (read twice, it could answer twice differently) throws:
 * the call is then not deduped.
 */
export function argumentReplacer(value: unknown): unknown {
  switch (typeof value) {
    case 'string':
      return `s${value}`;
    case 'function':
      return `f${functionId(value)}`;
    case 'symbol':
      return `y${String(value)}`; // by description, as object-hash compares symbols
    case 'object':
      return value === null ? value : replaceObject(value);
    default:
      return value;
  }
}

function replaceObject(value: object): unknown {
  const tag = stableTag(value);
  if (Buffer.isBuffer(value)) {
    const bytes = Buffer.from(
      bufferOf.call(value) as ArrayBuffer,
      byteOffsetOf.call(value) as number,
      byteLengthOf.call(value) as number,
    );
    return `b${bytes.toString('latin1')}`;
  }
  switch (tag) {
    case 'string':
      return `s${String.prototype.valueOf.call(value)}`; // a wrapper equals its primitive, as in object-hash
    case 'number':
      return Number.prototype.valueOf.call(value);
    case 'boolean':
      return Boolean.prototype.valueOf.call(value);
    case 'bigint':
      return BigInt.prototype.valueOf.call(value);
    case 'symbol':
      return `y${String(Symbol.prototype.valueOf.call(value))}`;
    case 'date':
      return `d${Date.prototype.getTime.call(value)}`;
    case 'regexp':
      return `r${sourceOf.call(value)}/${flagsOf.call(value)}`;
    case 'error':
      return `e${String(value)}`; // its toString(), as object-hash has it, now length-prefixed
    case 'url':
      return `u${String(value)}`;
    case 'xml':
      return `x${String(value)}`;
    case 'array':
      if (!Array.isArray(value)) throw new TypeError('an array look-alike');
      return value;
    default:
      return value;
  }
}

// The built-ins' own getters, which check what they are called on: an instance cannot shadow them.
const TypedArray = Object.getPrototypeOf(Uint8Array.prototype) as object;
const getter = (of: object, name: PropertyKey) =>
  Object.getOwnPropertyDescriptor(of, name)?.get as (this: unknown) => unknown;
const typedArrayTag = getter(TypedArray, Symbol.toStringTag);
const bufferOf = getter(TypedArray, 'buffer');
const byteOffsetOf = getter(TypedArray, 'byteOffset');
const byteLengthOf = getter(TypedArray, 'byteLength');
const sourceOf = getter(RegExp.prototype, 'source');
const flagsOf = getter(RegExp.prototype, 'flags');

/**
 * The type object-hash will dispatch `value` on (`Object.prototype.toString`'s tag, lower case), once it is
 * sure to read the same: no Proxy, and no getter for `Symbol.toStringTag` but the typed arrays' own.
 */
function stableTag(value: object): string {
  for (let link: object | null = value; link !== null; link = Object.getPrototypeOf(link)) {
    if (isProxy(link)) throw new TypeError('a Proxy');
    const own = Object.getOwnPropertyDescriptor(link, Symbol.toStringTag);
    if (own === undefined) continue;
    if (own.get !== undefined && own.get !== typedArrayTag) throw new TypeError('a toStringTag getter');
    break;
  }
  return Object.prototype.toString.call(value).slice(8, -1).toLowerCase();
}

/** Deeper than this, plain data goes to object-hash (which also copes with cycles). */
const MAX_PLAIN_DEPTH = 32;

/**
 * A canonical serialisation of primitives, arrays and plain objects, or `undefined` for anything else.
 * Every value is tagged with its type, strings and keys with their length, so that `1` and `'1'`, or
 * `['a,b']` and `['a', 'b']`, differ; object keys are sorted, as object-hash does.
 * @throws {TypeError} for a Proxy at any depth: the call is not fingerprinted at all.
 */
function plainKey(value: unknown): string | undefined {
  const out = { key: '' }; // one accumulator, passed down: a getter may schedule, and so re-enter
  return appendPlain(value, out, 0) ? out.key : undefined;
}

function appendPlain(value: unknown, out: { key: string }, depth: number): boolean {
  switch (typeof value) {
    case 'string':
      out.key += `s${value.length}:${value}`;
      return true;
    case 'number':
      out.key += `n${value};`; // '0' for -0 too: object-hash equates them as well
      return true;
    case 'boolean':
      out.key += value ? 't' : 'f';
      return true;
    case 'undefined':
      out.key += 'u';
      return true;
    case 'bigint':
      out.key += `i${value};`;
      return true;
    case 'function':
      out.key += `F${functionId(value)};`;
      return true;
    case 'symbol':
      return false;
  }
  if (value === null) {
    out.key += 'z';
    return true;
  }
  // A Proxy can answer every read differently (its keys, its values, its prototype), so a fingerprint of
  // one could lie: refused here, whatever its neighbours, as object-hash's path refuses it (stableTag).
  // Not at depth 0: that is the argument list itself, an array made by a rest parameter.
  if (depth !== 0 && isProxy(value)) throw new TypeError('a Proxy');
  if (depth > MAX_PLAIN_DEPTH) return false;
  if (Array.isArray(value)) {
    if (Object.getPrototypeOf(value) !== Array.prototype) return false;
    out.key += `[${value.length}:`;
    for (let i = 0; i < value.length; i++) {
      // Holes are left to object-hash.
      if (!(i in value) || !appendPlain(value[i], out, depth + 1)) return false;
    }
    out.key += ']';
    return true;
  }
  if (Object.getPrototypeOf(value) !== Object.prototype) return false;
  const object = value as Record<string, unknown>;
  const keys = Object.keys(object);
  if (keys.length > 1) keys.sort();
  out.key += `{${keys.length}:`;
  for (const name of keys) {
    out.key += `${name.length}:${name}`;
    if (!appendPlain(object[name], out, depth + 1)) return false;
  }
  out.key += '}';
  return true;
}

/** Longer keys are hashed, so that a big argument does not become a big string kept with its job. */
const MAX_PLAIN_KEY = 256;

function shorten(key: string): string {
  return key.length > MAX_PLAIN_KEY ? `#${createHash('sha1').update(key).digest('base64')}` : key;
}
