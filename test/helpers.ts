import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { expect } from 'chai';
import Koa from 'koa';
import request from 'supertest';
import { type RaincheckMiddleware, type RaincheckOptions, raincheck } from '../src/index.js';

/** A promise with its resolve function outside, for jobs and handlers to wait on. */
export function deferred<T = void>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

export { gatedOn, runtime } from './runtime.js';

/**
 * Why an object can survive `gc()` on Bun though nothing refers to it: JavaScriptCore scans the native stack
 * conservatively. Bun's heap snapshot of the first memory test shows the request's ctx held only by its
 * settled job's `.then` callback, itself held by nothing in the heap; an unrelated `await import()` later
 * frees it. A test that checks an object was collected is gated on Bun with this reason.
 */
export const conservativeStack =
  'JavaScriptCore scans the native stack conservatively: a stale stack slot can keep a dead object past gc()';

/**
 * Collects garbage at once, on each runtime the suite runs on: V8's `gc`, made available at run time (Node
 * and Deno), or Bun's `Bun.gc(true)`, a synchronous full collection (Bun has no `gc` to expose: JavaScriptCore
 * is not V8, and `node:vm` cannot fetch one there).
 */
export const gc: () => void = (() => {
  const global = globalThis as { gc?: () => void; Bun?: { gc(force: boolean): void } };
  const bun = global.Bun;
  if (bun !== undefined) return () => bun.gc(true);
  if (typeof global.gc === 'function') return global.gc;
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
})();

/** A Koa app with `raincheck(options)` mounted first, and the app's `'error'` events collected. */
export function appWith(options?: RaincheckOptions): {
  app: Koa;
  rc: RaincheckMiddleware;
  errors: Array<{ error: unknown; ctx: Koa.Context }>;
  /** Resolves when the first error has been reported: an event to wait on instead of a sleep. */
  firstError: Promise<void>;
} {
  const app = new Koa();
  const errors: Array<{ error: unknown; ctx: Koa.Context }> = [];
  const first = deferred();
  app.on('error', (error: unknown, ctx: Koa.Context) => {
    errors.push({ error, ctx });
    first.resolve();
  });
  const rc = raincheck(options);
  app.use(rc);
  return { app, rc, errors, firstError: first.promise };
}

/** Starts `app` on a free loopback port; `close()` also ends kept-alive connections. */
export async function listen(
  app: Koa,
): Promise<{ server: http.Server; url: string; close: () => Promise<void> }> {
  const server = http.createServer(app.callback());
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    server,
    url: `http://127.0.0.1:${port}`,
    close: async () => {
      server.closeAllConnections();
      server.close();
      await once(server, 'close');
    },
  };
}

/** Records what happened, in order, so tests can assert on sequence instead of timing. */
export class Timeline {
  readonly events: string[] = [];
  add(event: string): void {
    this.events.push(event);
  }
  indexOf(event: string): number {
    const index = this.events.indexOf(event);
    if (index === -1) throw new Error(`"${event}" never happened; timeline: ${this.events.join(', ')}`);
    return index;
  }
}

/** Sends `GET /?id=0` to `/?id=${count - 1}` all at once over real HTTP; checks each answer is its own id. */
export async function requestIds(app: Koa, count: number): Promise<void> {
  const { url, close } = await listen(app);
  try {
    const ids = Array.from({ length: count }, (_, i) => String(i));
    const bodies = await Promise.all(
      ids.map((id) =>
        request(url)
          .get(`/?id=${id}`)
          .then((r) => r.text),
      ),
    );
    expect(bodies).to.deep.equal(ids);
  } finally {
    await close();
  }
}
