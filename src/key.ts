import { createHash } from 'node:crypto';
import objectHash from 'object-hash';

/**
 * The dedupe key of a call: the function's identity plus a fingerprint of its arguments.
 *
 * Identity, not source: object-hash hashes a function by its source text, so two closures with the same code
 * and different captured values would collapse into one job. The same goes for functions among the arguments,
 * which the replacer turns into identity tokens.
 *
 * Returns `undefined` when the arguments cannot be fingerprinted (a Promise, an AbortSignal, Koa's `ctx`, a
 * getter that throws, ...): such a call is simply not deduped, and never fails.
 */
export function dedupeKey(fn: object, args: readonly unknown[]): string | undefined {
  const id = functionId(fn);
  const fast = primitivesKey(args);
  if (fast !== undefined) return `${id}:${fast}`;
  try {
    return `${id}#${objectHash(args as unknown[], { replacer: functionsByIdentity })}`;
  } catch {
    return undefined;
  }
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

/** A token no ordinary string argument is likely to equal. */
const FUNCTION_TOKEN = '\u0000koa-raincheck:function:';

function functionsByIdentity(value: unknown): unknown {
  return typeof value === 'function' ? FUNCTION_TOKEN + functionId(value) : value;
}

/** Longer fast keys are hashed so that a big string argument does not become a big Map key. */
const MAX_PLAIN_KEY = 256;

/**
 * The common case, arguments that are all primitives, without object-hash. Each value is tagged with its
 * type (and strings with their length) so that `1` and `'1'`, or `['a,b']` and `['a', 'b']`, differ.
 * Equality follows object-hash's: `0` and `-0` are equal, and so is `NaN` to `NaN`.
 * Returns `undefined` for anything else (symbols included, which object-hash compares by description).
 */
function primitivesKey(args: readonly unknown[]): string | undefined {
  let key = '';
  for (const value of args) {
    switch (typeof value) {
      case 'string':
        key += `s${value.length}:${value}`;
        break;
      case 'number':
        key += `n${String(value)};`;
        break;
      case 'boolean':
        key += value ? 't' : 'f';
        break;
      case 'undefined':
        key += 'u';
        break;
      case 'bigint':
        key += `i${value};`;
        break;
      case 'function':
        key += `F${functionId(value)};`;
        break;
      default:
        if (value !== null) return undefined;
        key += 'z';
    }
  }
  return key.length > MAX_PLAIN_KEY ? `h${createHash('sha1').update(key).digest('base64')}` : key;
}
