import { inspect } from 'node:util';
import { expect } from 'chai';
import fc from 'fast-check';
import Koa from 'koa';
import request from 'supertest';
import { type RaincheckOptions, raincheck } from '../../src/index.js';

/** Values a job may return or throw that break code which touches them carelessly. */
function hostile(kind: string): unknown {
  switch (kind) {
    case 'thenGetterThrows':
      return Object.defineProperty({}, 'then', {
        get() {
          throw new Error('then getter');
        },
      });
    case 'revokedProxy': {
      const { proxy, revoke } = Proxy.revocable({}, {});
      revoke();
      return proxy;
    }
    case 'strictProxy':
      return new Proxy(
        {},
        {
          get() {
            throw new Error('no property may be read');
          },
          getPrototypeOf() {
            throw new Error('no prototype either');
          },
        },
      );
    case 'messageGetterThrows': {
      const error = new Error('x');
      Object.defineProperty(error, 'message', {
        get() {
          throw new Error('message getter');
        },
      });
      return error;
    }
    case 'stackGetterThrows': {
      const error = new Error('x');
      Object.defineProperty(error, 'stack', {
        get() {
          throw new Error('stack getter');
        },
      });
      return error;
    }
    case 'inspectThrows':
      return {
        [inspect.custom]() {
          throw new Error('inspect hook');
        },
      };
    case 'promiseConstructorThrows': {
      const promise = Promise.resolve(1);
      Object.defineProperty(promise, 'constructor', {
        get() {
          throw new Error('constructor getter');
        },
      });
      return promise;
    }
    case 'thenCallsBoth':
      return {
        // biome-ignore lint/suspicious/noThenProperty: a hostile thenable is the point
        then(resolve: (v: unknown) => void, reject: (e: unknown) => void) {
          resolve(1);
          reject(new Error('late'));
          resolve(2);
        },
      };
    case 'thenThrows':
      return {
        // biome-ignore lint/suspicious/noThenProperty: a hostile thenable is the point
        then() {
          throw new Error('then throws');
        },
      };
    case 'symbol':
      return Symbol('thrown');
    case 'null':
      return null;
    default:
      return undefined;
  }
}

const kinds = [
  'thenGetterThrows',
  'revokedProxy',
  'strictProxy',
  'messageGetterThrows',
  'stackGetterThrows',
  'inspectThrows',
  'promiseConstructorThrows',
  'thenCallsBoth',
  'thenThrows',
  'symbol',
  'null',
  'undefined',
] as const;

/** How a job ends: returns the value, throws it, or rejects with it (after an await). */
const jobs = fc.record({
  kind: fc.constantFrom(...kinds),
  how: fc.constantFrom('return', 'throw', 'reject'),
});
/** What a reporting hook does with what it is given. */
const hookBehaviour = fc.constantFrom('fine', 'throw', 'returnHostile', 'rejectHostile');

function hook(behaviour: string, kind: string): () => unknown {
  return () => {
    if (behaviour === 'throw') throw hostile(kind);
    if (behaviour === 'returnHostile') return hostile(kind);
    if (behaviour === 'rejectHostile') return Promise.reject(hostile(kind));
    return undefined;
  };
}

describe('raincheck({ concurrency: 1 }) with hostile jobs and hooks', () => {
  it('ends every job in exactly one counted state, goes idle, and lets nothing escape', async () => {
    const escaped: unknown[] = [];
    const onEscape = (error: unknown) => escaped.push(error);
    // Mocha's own handlers stay; these only record, so that the property can say what escaped.
    process.on('uncaughtException', onEscape);
    process.on('unhandledRejection', onEscape);
    // Hostile hooks make hundreds of RAINCHECK_HOOK_FAILED warnings: counted, not printed.
    const printers = process.listeners('warning');
    process.removeAllListeners('warning');
    let warnings = 0;
    const onWarning = () => {
      warnings++;
    };
    process.on('warning', onWarning);
    try {
      await fc.assert(
        fc.asyncProperty(
          fc.array(jobs, { minLength: 1, maxLength: 6 }),
          hookBehaviour,
          hookBehaviour,
          fc.constantFrom(...kinds),
          fc.boolean(),
          async (specs, onErrorBehaviour, onDropBehaviour, hookKind, failRequest) => {
            const options: RaincheckOptions = {
              concurrency: 1,
              dedupe: false,
              onError: hook(onErrorBehaviour, hookKind),
              onDrop: hook(onDropBehaviour, hookKind),
            };
            const app = new Koa();
            app.silent = true;
            const rc = raincheck(options);
            app.use(rc);
            const scheduled = specs.map((spec) => ({ spec, always: !failRequest || spec.how !== 'return' }));
            app.use(async (ctx) => {
              for (const { spec, always } of scheduled) {
                const call = ctx.raincheck(async function hostileJob() {
                  if (spec.how === 'reject') await Promise.resolve();
                  if (spec.how !== 'return') throw hostile(spec.kind);
                  return hostile(spec.kind);
                });
                if (always) call.always();
              }
              if (failRequest) ctx.status = 500;
              ctx.body = 'ok';
            });
            await request(app.callback()).get('/');
            let timer: NodeJS.Timeout | undefined;
            // A deadline, not a wait: a wedged slot fails the property here instead of hanging the suite.
            const wedged = new Promise<'wedged'>((resolve) => {
              timer = setTimeout(resolve, 2_000, 'wedged');
            });
            const idle = await Promise.race([rc.onIdle().then(() => 'idle' as const), wedged]);
            clearTimeout(timer);
            await new Promise((resolve) => setImmediate(resolve)); // let a late escape surface
            expect(idle).to.equal('idle');
            const { scheduled: made, succeeded, failed, timedOut, dropped, running, waiting } = rc.stats;
            expect(made).to.equal(specs.length);
            expect(succeeded + failed + timedOut + dropped).to.equal(specs.length);
            expect(running + waiting + rc.pending).to.equal(0);
            expect(escaped).to.deep.equal([]);
          },
        ),
        { numRuns: 150 },
      );
    } finally {
      process.off('uncaughtException', onEscape);
      process.off('unhandledRejection', onEscape);
      process.off('warning', onWarning);
      for (const printer of printers) process.on('warning', printer);
    }
    expect(warnings).to.be.greaterThan(0); // the hooks' failures were reported, not swallowed
  });
});
