// One benchmark server process, started by bench/run.ts and bench/instructions.ts:
// `node --expose-gc bench/server.mjs S2`.
// Plain JavaScript on the built dist/, run by plain node: what users run. (Through tsx, esbuild's
// keep-names helper would wrap every closure the library creates per request, and skew the figures.)
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import Koa from 'koa';

// BENCH_DIST: another build of the library (a directory holding its index.js) instead of dist/, to compare
// two builds, or to measure one that another process's `npm run build` cannot change meanwhile.
const library = process.env.BENCH_DIST
  ? pathToFileURL(path.resolve(process.env.BENCH_DIST, 'index.js')).href
  : '../dist/index.js';
const { raincheck, schedule } = await import(library);
const { floor, floorSchedule } = await import('./floor.mjs');

/** The scenarios: each one a Koa app whose per-request CPU is compared with bare Koa's (S0). */
export const scenarios = {
  S0: 'bare Koa',
  S0A: 'bare Koa with asyncLocalStorage: true (the baseline of S6)',
  S1: 'raincheck mounted, no job',
  S2: 'one job, three short strings',
  S3: 'ten jobs, five duplicates',
  S4: 'one job awaiting a 50 ms timer',
  S5: 'one job, an array of 1,000 small objects',
  S6: 'S2 through schedule(), without ctx (Koa asyncLocalStorage on)',
  S7: 'one job, dedupe: false',
  S8: 'one 20 ms job per request, ten requests per key, .coalesce()',
  S9: 'one async job per request, a key of its own, .coalesce({ ttl: 50 })',
  S2K: 'S2 with keepContext: false',
  S3K: 'S3 with keepContext: false',
  // S8 taken apart (docs/performance.md, "Coalescing"): run only when BENCH_ONLY names them.
  S8R: "S8's requests whose job runs (one in ten); the nine others schedule nothing",
  // The floor (bench/floor.mjs) under the same handlers: what the core semantics cost at the least.
  F1: 'S1 with the floor middleware',
  F2: 'S2 with the floor middleware',
  F3: 'S3 with the floor middleware',
  F2K: 'S2K with the floor middleware (no context kept)',
  F3K: 'S3K with the floor middleware (no context kept)',
  F6: 'S6 with the floor middleware',
  T20: "no job: one request in ten makes a 20 ms timer and its promise, as S8R's job does",
};

const noop = () => {};
/** S8: a job that runs for 20 ms (a cache refresh, say), so the identical jobs of the next requests find it running. */
const refresh = (_id) => new Promise((resolve) => setTimeout(resolve, 20));
/** S9: a job that ends on the next turn of the event loop. */
const reindex = (_id) => new Promise((resolve) => setImmediate(resolve));
let requests = 0;
const wait50 = () => new Promise((resolve) => setTimeout(resolve, 50));
const five = Array.from({ length: 5 }, () => () => {});
const thousand = Array.from({ length: 1000 }, (_, i) => ({ id: i, name: `item ${i}`, ok: i % 2 === 0 }));
/**
 * CPU time spent inside ctx.raincheck() in S5, for the scheduling-cost target. CPU time, not wall time:
 * the two servers share a core, and a call preempted by the other one would count its time too.
 */
const scheduling = { calls: 0, micros: 0 };

const handlers = {
  S0: (ctx) => {
    ctx.body = 'ok';
  },
  S0A: (ctx) => {
    ctx.body = 'ok';
  },
  S1: (ctx) => {
    ctx.body = 'ok';
  },
  S2: (ctx) => {
    ctx.raincheck(noop, 'user@example.com', 'Welcome', 'Hello there');
    ctx.body = 'ok';
  },
  S3: (ctx) => {
    for (let i = 0; i < 10; i++) ctx.raincheck(five[i % 5], 'user@example.com', 'event', 'payload');
    ctx.body = 'ok';
  },
  S4: (ctx) => {
    ctx.raincheck(wait50);
    ctx.body = 'ok';
  },
  S5: (ctx) => {
    const start = process.cpuUsage();
    ctx.raincheck(noop, thousand);
    const spent = process.cpuUsage(start);
    scheduling.micros += spent.user + spent.system;
    scheduling.calls++;
    ctx.body = 'ok';
  },
  S6: (ctx) => {
    schedule(noop, 'user@example.com', 'Welcome', 'Hello there');
    ctx.body = 'ok';
  },
  S7: (ctx) => {
    ctx.raincheck(noop, 'user@example.com', 'Welcome', 'Hello there');
    ctx.body = 'ok';
  },
  // Ten requests in a row share a key: with ten connections, about ten concurrent requests per key.
  S8: (ctx) => {
    ctx.raincheck(refresh, Math.floor(requests++ / 10)).coalesce();
    ctx.body = 'ok';
  },
  // S8 without its joins: the one request in ten whose job would run schedules it, the others nothing.
  S8R: (ctx) => {
    const n = requests++;
    if (n % 10 === 0) ctx.raincheck(refresh, n / 10).coalesce();
    ctx.body = 'ok';
  },
  // What S8R's job costs with no library involved: the same timer and promise, made by the handler.
  T20: (ctx) => {
    if (requests++ % 10 === 0) void refresh(requests);
    ctx.body = 'ok';
  },
  // Every key once: each job stays in the coalescing index for 50 ms after it succeeded (heap soak).
  S9: (ctx) => {
    ctx.raincheck(reindex, requests++).coalesce({ ttl: 50 });
    ctx.body = 'ok';
  },
};

handlers.S2K = handlers.S2;
handlers.S3K = handlers.S3;
let floorApp;
Object.assign(handlers, {
  F1: handlers.S1,
  F2: handlers.S2,
  F3: handlers.S3,
  F2K: handlers.S2,
  F3K: handlers.S3,
  F6: (ctx) => {
    floorSchedule(floorApp, noop, 'user@example.com', 'Welcome', 'Hello there');
    ctx.body = 'ok';
  },
});

const name = process.argv[2];
if (name !== undefined) {
  if (!Object.hasOwn(handlers, name)) throw new TypeError(`Unknown scenario ${name}`);
  const bare = name === 'S0' || name === 'S0A';
  const app = new Koa({ asyncLocalStorage: name === 'S6' || name === 'F6' || name === 'S0A' });
  floorApp = app;
  let completed = 0;
  app.use(async (_ctx, next) => {
    await next();
    completed++;
  });
  // S4 without the concurrency bound: at full load its 50 ms jobs would otherwise pile up waiting for a
  // slot, and the scenario measures one job per request, not the queue.
  const concurrency = name === 'S4' ? Number.POSITIVE_INFINITY : undefined;
  // BENCH_OPTIONS: more options for raincheck(), as JSON, to compare settings (`{"keepContext":false}`).
  const extra = process.env.BENCH_OPTIONS ? JSON.parse(process.env.BENCH_OPTIONS) : {};
  if (name === 'S2K' || name === 'S3K') extra.keepContext = false;
  if (name.startsWith('F')) app.use(floor({ keepContext: !name.endsWith('K') }));
  else if (!bare) app.use(raincheck({ dedupe: name !== 'S7', concurrency, ...extra }));
  app.use(handlers[name]);
  const server = app.listen(0, '127.0.0.1', () =>
    process.send?.({ type: 'ready', port: server.address().port }),
  );
  // bench/instructions.ts keeps its connection idle for seconds between counted windows under valgrind:
  // not closed meanwhile. (Any timeout costs the same per request: Node re-arms it on every response.)
  server.keepAliveTimeout = 600_000;

  process.on('message', (message) => {
    if (message.type === 'cpu') {
      // Read before any GC this process is asked to do, so forced GCs stay out of the window.
      const cpu = process.cpuUsage();
      process.send?.({
        type: 'cpu',
        cpuMicros: cpu.user + cpu.system,
        completed,
        schedulingCalls: scheduling.calls,
        schedulingMicros: scheduling.micros,
      });
    } else if (message.type === 'heap') {
      globalThis.gc?.();
      process.send?.({ type: 'heap', heapAfterGC: process.memoryUsage().heapUsed });
    } else if (message.type === 'exit') {
      server.close();
      process.exit(0);
    }
  });
}
