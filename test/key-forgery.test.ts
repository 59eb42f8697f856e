import { expect } from 'chai';
import objectHash from 'object-hash';
import request from 'supertest';
import type { Scheduled } from '../src/index.js';
import { argumentReplacer, dedupeKey } from '../src/key.js';
import { appWith } from './helpers.js';

/** The id a function gets in dedupe keys, read from the key of a job that takes no argument. */
function idOf(scheduled: Scheduled): string {
  return /^\d+/.exec(scheduled.job.key ?? '')?.[0] ?? '';
}

describe('ctx.raincheck(fn, ...args): a dedupe key no argument can forge', () => {
  it('runs a call with a Map and a function, and the same call with the string that stood for the function', async () => {
    const { app, rc, errors } = appWith();
    const ran: string[] = [];
    const returned: Scheduled[] = [];
    app.use(async (ctx) => {
      const callback = function callback() {};
      const id = idOf(ctx.raincheck(callback));
      const job = (_map: Map<string, number>, last: unknown) => ran.push(typeof last);
      // Until issue 13, a function argument hashed as this string did: the second call was lost.
      const forged = `\u0000koa-raincheck:function:${id}`;
      returned.push(ctx.raincheck(job, new Map([['a', 1]]), callback));
      returned.push(ctx.raincheck(job, new Map([['a', 1]]), forged));
      // The same through a Set member, another value object-hash reaches only through the replacer.
      const inSet = (_set: Set<unknown>) => ran.push('set');
      returned.push(ctx.raincheck(inSet, new Set([callback])), ctx.raincheck(inSet, new Set([forged])));
      ctx.body = 'ok';
    });
    await request(app.callback()).get('/').expect(200);
    await rc.onIdle();
    expect(returned.map((s) => s.deduped)).to.deep.equal([false, false, false, false]);
    expect(ran).to.deep.equal(['function', 'string', 'set', 'set']);
    expect(errors).to.deep.equal([]);
  });
});

/** What object-hash writes for `value` under `replacer`: the bytes its hash is made of. */
function written(value: unknown, replacer: (value: unknown) => unknown): string {
  let out = '';
  const sink = { write: (chunk: unknown) => (out += String(chunk)) } as unknown as NodeJS.WritableStream;
  objectHash.writeToStream(value, { replacer }, sink);
  return out;
}

/** A value object-hash writes as `pre + content + post`, content unescaped, unless the replacer steps in. */
interface RawWriter {
  readonly make: (content: string) => unknown;
  readonly pre: string;
  readonly post: string;
  /** Reads the tag once, as a replacer checking it would: for the naive replacer, which does not. */
  readonly prime?: (value: unknown) => void;
}

const tagged = (tag: string, rest: object) => Object.assign({ [Symbol.toStringTag]: tag }, rest);

const rawWriters: Record<string, RawWriter> = {
  'a String look-alike (toStringTag, length, toString)': {
    make: (content) => tagged('String', { length: '', toString: () => content }),
    pre: 'string::',
    post: '',
  },
  'an array look-alike whose length is text': {
    make: (content) => tagged('Array', { length: content, forEach() {} }),
    pre: 'array:',
    post: ':',
  },
  'a Proxy of an array whose length is text': {
    make: (content) =>
      new Proxy([], {
        get: (target, name) =>
          name === 'length' ? content : name === 'forEach' ? () => {} : Reflect.get(target, name),
      }),
    pre: 'array:',
    post: ':',
  },
  'a Number wrapper with its own toString': {
    make: (content) => Object.assign(Object(1), { toString: () => content }),
    pre: 'number:',
    post: '',
  },
  'a Boolean wrapper with its own toString': {
    make: (content) => Object.assign(Object(true), { toString: () => content }),
    pre: 'bool:',
    post: '',
  },
  'a BigInt wrapper with its own toString': {
    make: (content) => Object.assign(Object(1n), { toString: () => content }),
    pre: 'bigint:',
    post: '',
  },
  'an Error with an empty name': {
    make: (content) => Object.assign(new Error(content), { name: '' }),
    pre: 'error:',
    post: '',
  },
  'a Date with its own toJSON': {
    make: (content) => Object.assign(new Date(0), { toJSON: () => content }),
    pre: 'date:',
    post: '',
  },
  'a RegExp with its own toString': {
    make: (content) => Object.assign(/x/, { toString: () => content }),
    pre: 'regex:',
    post: '',
  },
  'a URL look-alike': {
    make: (content) => tagged('URL', { toString: () => content }),
    pre: 'url:',
    post: '',
  },
  'an XML look-alike': {
    make: (content) => tagged('XML', { toString: () => content }),
    pre: 'xml:',
    post: '',
  },
  'a symbol': { make: (content) => Symbol(content), pre: 'symbol:Symbol(', post: ')' },
  'a Buffer': { make: (content) => Buffer.from(content, 'latin1'), pre: 'buffer:', post: '' },
  'a look-alike whose toStringTag getter answers Object once, then String': {
    make: (content) => {
      let reads = 0;
      return {
        get [Symbol.toStringTag]() {
          return ++reads === 1 ? 'Object' : 'String';
        },
        length: '',
        toString: () => content,
      };
    },
    pre: 'string::',
    post: '',
    prime: (value) => Object.prototype.toString.call(value),
  },
};

describe('dedupeKey(fn, args) against values object-hash writes raw', () => {
  const fn = () => {};
  const callback = function callback() {};
  // A function stands for itself by identity only: any replacer that maps it to a value of its own.
  const naive = (value: unknown) => (typeof value === 'function' ? 'the function' : value);

  for (const [what, { make, pre, post, prime }] of Object.entries(rawWriters)) {
    it(`keeps ${what} from passing for a function argument`, () => {
      /**
       * [K(a), fn, K(P·post·pre·Q·post·pre·R)] against [K(a·post·token·pre·P), K(Q), K(R)], `token` being
       * what the function writes: both write pre·a·post·token·pre·P·post·pre·Q·post·pre·R·post.
       */
      const pair = (token: string, primed: boolean) => {
        // The Map first: arguments that are not all plain data are the ones object-hash fingerprints.
        const a = [new Map(), make('a'), callback, make(`P${post}${pre}Q${post}${pre}R`)];
        const b = [new Map(), make(`a${post}${token}${pre}P`), make('Q'), make('R')];
        if (primed) for (const value of [...a, ...b]) prime?.(value);
        return { a, b };
      };
      // The forgery is real: against object-hash with a replacer that only rewrites functions, it works.
      const naiveToken = written([callback], naive).slice('array:1:'.length);
      const against = pair(naiveToken, true);
      expect(written(against.b, naive)).to.equal(written(against.a, naive));
      // Against the dedupe key, whatever the function is written as, it must not.
      const token = written([callback], argumentReplacer).slice('array:1:'.length);
      const { a, b } = pair(token, false);
      const keyA = dedupeKey(fn, a);
      const keyB = dedupeKey(fn, b);
      // `undefined` is a call not deduped: never collapsed into another.
      expect(keyA === undefined || keyA !== keyB, `${keyA} and ${keyB}`).to.equal(true);
    });
  }

  it('keeps a string apart from a function argument, whatever the function is written as', () => {
    const token = written([callback], argumentReplacer).slice('array:1:'.length);
    const text = /^string:\d+:([\s\S]*)$/.exec(token)?.[1] ?? token;
    expect(dedupeKey(fn, [new Map(), text])).to.not.equal(dedupeKey(fn, [new Map(), callback]));
  });

  it('still dedupes equal values of every kind the replacer rewrites', () => {
    const map = () => new Map([['a', 1]]);
    const same = (make: () => unknown) =>
      expect(dedupeKey(fn, [map(), make()]))
        .to.be.a('string')
        .and.equal(dedupeKey(fn, [map(), make()]));
    for (const make of [
      () => Buffer.from('bytes'),
      () => new Error('boom'),
      () => new Date(0),
      () => /a+/gi,
      () => Object(1),
      () => Object('text'),
      () => Object(Symbol.for('s')),
      () => new URL('http://example.com/a'),
      () => new Set(['a', callback]),
      () => new Map([[callback, 'a']]),
      () => new Uint8Array([1, 2]),
    ]) {
      same(make);
    }
    // As object-hash has it: a wrapper equals its primitive, and a symbol compares by its description.
    expect(dedupeKey(fn, [map(), Object('text')])).to.equal(dedupeKey(fn, [map(), 'text']));
    expect(dedupeKey(fn, [map(), Symbol('s')])).to.equal(dedupeKey(fn, [map(), Symbol('s')]));
    for (const [x, y] of [
      [new Date(0), new Date(1)],
      [Buffer.from('a'), Buffer.from('b')],
      [/a/g, /a/i],
      [new Error('a'), new Error('b')],
    ]) {
      expect(dedupeKey(fn, [map(), x])).to.not.equal(dedupeKey(fn, [map(), y]));
    }
  });
});
