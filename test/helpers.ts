import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
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
