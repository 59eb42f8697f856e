import Koa from 'koa';
import { raincheck } from '../src/index.js';

/** The benchmark's scenarios: each one a Koa app whose per-request CPU is compared with bare Koa's. */
export const scenarios = {
  S0: 'bare Koa',
  S1: 'raincheck mounted, no job',
  S2: 'one job, three short strings',
  S3: 'ten jobs, five duplicates',
  S4: 'one job awaiting a 50 ms timer',
  S5: 'one job, an array of 1,000 small objects',
  S7: 'one job, dedupe: false',
} as const;

export type ScenarioName = keyof typeof scenarios;

const noop = (..._args: unknown[]): void => {};
const wait50 = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 50));
const jobs = Array.from({ length: 5 }, () => (..._args: unknown[]): void => {});
const thousand = Array.from({ length: 1000 }, (_, i) => ({ id: i, name: `item ${i}`, ok: i % 2 === 0 }));

/** Time spent inside ctx.raincheck(), for the scheduling-cost target. */
export const scheduling = { calls: 0, nanoseconds: 0n };

export function appFor(name: ScenarioName): Koa {
  const app = new Koa();
  if (name !== 'S0') app.use(raincheck({ dedupe: name !== 'S7' }));
  app.use(handlers[name]);
  return app;
}

const handlers: Record<ScenarioName, Koa.Middleware> = {
  S0: (ctx) => {
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
    for (let i = 0; i < 10; i++) ctx.raincheck(jobs[i % 5] ?? noop, 'user@example.com', 'event', 'payload');
    ctx.body = 'ok';
  },
  S4: (ctx) => {
    ctx.raincheck(wait50);
    ctx.body = 'ok';
  },
  S5: (ctx) => {
    const start = process.hrtime.bigint();
    ctx.raincheck(noop, thousand);
    scheduling.nanoseconds += process.hrtime.bigint() - start;
    scheduling.calls++;
    ctx.body = 'ok';
  },
  S7: (ctx) => {
    ctx.raincheck(noop, 'user@example.com', 'Welcome', 'Hello there');
    ctx.body = 'ok';
  },
};
