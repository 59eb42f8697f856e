// Job spans against the real OpenTelemetry SDK (sdk-trace, its in-memory exporter, and the
// AsyncLocalStorage context manager), over real HTTP, with the request's span made as
// @opentelemetry/instrumentation-http makes it. Both SDK packages (3.x) need Node 22.15: on older Nodes the
// suite is not registered, and one line says so.
import { readFileSync } from 'node:fs';
import Router from '@koa/router';
import { context, ROOT_CONTEXT, type Span, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import type {
  InMemorySpanExporter,
  ReadableSpan,
  SpanProcessor,
  TracerProvider,
} from '@opentelemetry/sdk-trace';
import { expect } from 'chai';
import Koa from 'koa';
import request from 'supertest';
import { atomic, type RaincheckOptions, raincheck, schedule, setOutsideRequest } from '../src/index.js';
import { instrument } from '../src/instrument.js';
import { traceJobs } from '../src/otel.js';
import { enginesOf, nodeSatisfies } from './adapters/majors.js';
import { deferred, listen, Timeline } from './helpers.js';

const sdk = ['@opentelemetry/sdk-trace', '@opentelemetry/context-async-hooks'] as const;
const unsupported = sdk.filter((module) => !nodeSatisfies(enginesOf(module)));

if (unsupported.length > 0) {
  const why = unsupported.map((module) => `${module} (needs Node ${enginesOf(module)})`).join(', ');
  console.log(`not run on Node ${process.versions.node}: the traceJobs() suite, ${why}`);
} else {
  describe('traceJobs() from koa-raincheck/otel', () => {
    let exporter: InMemorySpanExporter;
    let provider: TracerProvider;
    let disableContext: () => void;
    /** Span starts and ends in the order the SDK saw them: an order, not timestamps to compare. */
    let timeline: Timeline;
    let stop: () => void;

    before(async () => {
      const { InMemorySpanExporter, SimpleSpanProcessor, TracerProvider } = await import(
        '@opentelemetry/sdk-trace'
      );
      const { AsyncLocalStorageContextManager } = await import('@opentelemetry/context-async-hooks');
      exporter = new InMemorySpanExporter();
      const order: SpanProcessor = {
        onStart: (span) => timeline.add(`start ${span.name}`),
        onEnd: (span) => timeline.add(`end ${span.name}`),
        forceFlush: async () => {},
        shutdown: async () => {},
      };
      provider = new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter }), order] });
      const contextManager = new AsyncLocalStorageContextManager().enable();
      disableContext = () => contextManager.disable();
      expect(context.setGlobalContextManager(contextManager)).to.equal(true);
      expect(trace.setGlobalTracerProvider(provider)).to.equal(true);
    });

    after(async () => {
      await provider.shutdown();
      trace.disable();
      disableContext();
      context.disable();
    });

    beforeEach(() => {
      exporter.reset();
      timeline = new Timeline();
      stop = traceJobs();
    });

    afterEach(() => stop());

    /**
     * The request's span as @opentelemetry/instrumentation-http makes it: a SERVER span named after the
     * method, active for the rest of the request, ended on the response's 'close' (its listener added
     * before raincheck()'s), so that the request's jobs start after it has ended.
     */
    const serverSpan: Koa.Middleware = (ctx, next) => {
      const span = trace.getTracer('http').startSpan(ctx.method, { kind: SpanKind.SERVER }, ROOT_CONTEXT);
      ctx.res.once('close', () => {
        span.setAttribute('http.response.status_code', ctx.res.statusCode);
        span.end();
      });
      return context.with(trace.setSpan(context.active(), span), next);
    };

    /** An app with the request span, then raincheck(options), then `router`; its `'error'` events kept. */
    function appWith(router: Router, options?: RaincheckOptions) {
      const app = new Koa();
      const errors: unknown[] = [];
      app.on('error', (error: unknown) => errors.push(error));
      const rc = raincheck(options);
      app.use(serverSpan).use(rc).use(router.routes());
      return { app, rc, errors };
    }

    async function get(app: Koa, path: string, status: number): Promise<void> {
      const { url, close } = await listen(app);
      try {
        await request(url).get(path).expect(status);
      } finally {
        await close();
      }
    }

    /** The spans exported, by name; each name must be exported once. */
    async function exported(): Promise<Record<string, ReadableSpan>> {
      await provider.forceFlush();
      const byName: Record<string, ReadableSpan> = {};
      for (const span of exporter.getFinishedSpans()) {
        expect(byName, `two spans named ${span.name}`).to.not.have.property(span.name);
        byName[span.name] = span;
      }
      return byName;
    }

    const parentOf = (span: ReadableSpan | undefined) => span?.parentSpanContext?.spanId;
    const idOf = (span: ReadableSpan | undefined) => span?.spanContext().spanId;
    const traceOf = (span: ReadableSpan | undefined) => span?.spanContext().traceId;

    it('a request with two jobs, one failing: spans, parentage, trace ids, attributes and statuses', async () => {
      const tracer = trace.getTracer('app');
      async function loadProfile(id: string): Promise<void> {
        await Promise.resolve(); // past the job's first tick: the job's span must still be the active one
        await tracer.startActiveSpan('db.query', async (span: Span) => {
          span.setAttribute('user', id);
          span.end();
        });
      }
      async function sendEmail(to: string): Promise<void> {
        await Promise.resolve();
        throw new Error(`smtp down for ${to}`);
      }
      const router = new Router();
      router.get('/users/:id', async (ctx) => {
        const id = ctx.params.id ?? '';
        ctx.raincheck(loadProfile, id);
        ctx.raincheck(loadProfile, id); // identical: collapsed into the first
        ctx.raincheck(sendEmail, 'ann@example.com');
        ctx.body = 'ok';
      });
      const { app, rc, errors } = appWith(router);
      await get(app, '/users/7', 200);
      await rc.onIdle();

      const spans = await exported();
      expect(Object.keys(spans).sort()).to.deep.equal(['GET', 'db.query', 'loadProfile', 'sendEmail']);
      const { GET: server, loadProfile: profile, sendEmail: email, 'db.query': query } = spans;
      expect(server?.kind).to.equal(SpanKind.SERVER);
      // Children of the request's span, in its trace, though they start after it has ended.
      for (const job of [profile, email]) {
        expect(job?.kind).to.equal(SpanKind.INTERNAL);
        expect(parentOf(job)).to.equal(idOf(server));
        expect(traceOf(job)).to.equal(traceOf(server));
        expect(timeline.indexOf(`start ${job?.name}`)).to.be.greaterThan(timeline.indexOf('end GET'));
      }
      // What the job does is traced inside its span.
      expect(parentOf(query)).to.equal(idOf(profile));
      expect(traceOf(query)).to.equal(traceOf(server));

      // The default tracer: this package's name and version.
      const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
      expect(profile?.instrumentationScope).to.deep.include({ name: 'koa-raincheck', version });

      const wait = profile?.attributes['koa_raincheck.job.wait_ms'];
      expect(wait).to.be.a('number').and.at.least(0);
      expect(email?.attributes['koa_raincheck.job.wait_ms']).to.be.a('number').and.at.least(0);
      expect(profile?.attributes).to.deep.equal({
        'koa_raincheck.job.name': 'loadProfile',
        'koa_raincheck.job.wait_ms': wait,
        'http.request.method': 'GET',
        'http.route': '/users/:id',
        'koa_raincheck.job.state': 'succeeded',
        'koa_raincheck.job.deduped': true,
        'koa_raincheck.job.collapsed_calls': 1,
      });
      expect(email?.attributes).to.include({
        'koa_raincheck.job.name': 'sendEmail',
        'koa_raincheck.job.state': 'failed',
        'koa_raincheck.job.deduped': false,
        'koa_raincheck.job.collapsed_calls': 0,
        'http.request.method': 'GET',
        'http.route': '/users/:id',
      });

      // A success leaves the status UNSET; a failure is an error with its message and exception event.
      expect(profile?.status).to.deep.equal({ code: SpanStatusCode.UNSET });
      expect(profile?.events).to.deep.equal([]);
      expect(email?.status).to.deep.equal({
        code: SpanStatusCode.ERROR,
        message: 'smtp down for ann@example.com',
      });
      expect(email?.events.map((event) => [event.name, event.attributes])).to.deep.equal([
        [
          'exception',
          {
            'exception.type': 'Error',
            'exception.message': 'smtp down for ann@example.com',
            'exception.stacktrace': email?.events[0]?.attributes?.['exception.stacktrace'],
          },
        ],
      ]);
      expect(email?.events[0]?.attributes?.['exception.stacktrace']).to.include('sendEmail');
      expect(errors).to.have.length(1); // and the failure is still reported as ever
    });

    it('jobs dropped (the request failed, a cancel()): spans with the reason, children of the request span', async () => {
      const ran: string[] = [];
      const router = new Router();
      router.get('/orders/:id', async (ctx) => {
        ctx.raincheck(function audit() {
          ran.push('audit');
        });
        ctx.raincheck(function retracted() {}).cancel();
        ctx.status = 500;
        ctx.body = 'boom';
      });
      const { app, rc } = appWith(router);
      await get(app, '/orders/1', 500);
      await rc.onIdle();

      const { GET: server, audit, retracted } = await exported();
      expect(ran).to.deep.equal([]);
      expect(parentOf(audit)).to.equal(idOf(server));
      expect(traceOf(audit)).to.equal(traceOf(server));
      expect(audit?.kind).to.equal(SpanKind.INTERNAL);
      expect(audit?.attributes).to.deep.equal({
        'koa_raincheck.job.name': 'audit',
        'http.request.method': 'GET',
        'http.route': '/orders/:id',
        'koa_raincheck.job.state': 'dropped',
        'koa_raincheck.job.deduped': false,
        'koa_raincheck.job.collapsed_calls': 0,
        'koa_raincheck.job.drop_reason': 'the response status was 500',
      });
      // The request's outcome, not an error of the job.
      expect(audit?.status).to.deep.equal({ code: SpanStatusCode.UNSET });
      expect(parentOf(retracted)).to.equal(idOf(server));
      expect(retracted?.attributes).to.include({
        'koa_raincheck.job.state': 'dropped',
        'koa_raincheck.job.drop_reason': 'it was cancelled (scheduled.cancel())',
      });
      expect(retracted?.status).to.deep.equal({ code: SpanStatusCode.UNSET });
      // From its scheduling, during the request, to its drop, after it: not an instant.
      expect(timeline.indexOf('end audit')).to.be.greaterThan(timeline.indexOf('end GET'));
      const [seconds = 0, nanoseconds = 0] = audit?.duration ?? [];
      expect(seconds * 1e9 + nanoseconds).to.be.greaterThan(0);
    });

    it('a job of a transaction that rolled back: dropped, with the rollback as the reason, on a request that succeeded', async () => {
      const router = new Router();
      router.get('/', async (ctx) => {
        await atomic(async () => {
          ctx.raincheck(function confirm() {});
          throw new Error('rolled back');
        }).catch(() => {});
        ctx.body = 'ok';
      });
      const { app, rc } = appWith(router);
      await get(app, '/', 200);
      await rc.onIdle();
      const { GET: server, confirm } = await exported();
      expect(parentOf(confirm)).to.equal(idOf(server));
      expect(confirm?.attributes).to.include({
        'koa_raincheck.job.state': 'dropped',
        'koa_raincheck.job.drop_reason': 'its transaction rolled back',
      });
      expect(confirm?.status).to.deep.equal({ code: SpanStatusCode.UNSET });
    });

    it('a job turned away by maxWaiting: dropped, with the status ERROR and the overflow as the reason', async () => {
      const release = deferred();
      const router = new Router();
      router.get('/', async (ctx) => {
        ctx.raincheck(function first() {
          return release.promise;
        });
        ctx.raincheck(function second() {}); // no free slot, and no room to wait
        ctx.body = 'ok';
      });
      const { app, rc, errors } = appWith(router, { concurrency: 1, maxWaiting: 0 });
      await get(app, '/', 200);
      release.resolve();
      await rc.onIdle();

      const { GET: server, first, second } = await exported();
      const message =
        'koa-raincheck: job second() not run: 0 jobs were already waiting for a free slot (maxWaiting)';
      expect(parentOf(second)).to.equal(idOf(server));
      expect(second?.attributes).to.include({
        'koa_raincheck.job.state': 'dropped',
        'koa_raincheck.job.drop_reason': message,
      });
      expect(second?.status).to.deep.equal({ code: SpanStatusCode.ERROR, message });
      expect(first?.attributes).to.include({ 'koa_raincheck.job.state': 'succeeded' });
      expect(errors).to.have.length(1);
    });

    it('a job that outlives its .timeout(20): ended then, timedOut, with the status ERROR', async () => {
      const release = deferred();
      const done = deferred();
      const tracer = trace.getTracer('app');
      async function slow(): Promise<void> {
        await release.promise;
        tracer.startSpan('after the timeout').end(); // still traced inside the job's span
        done.resolve();
      }
      const router = new Router();
      router.get('/', async (ctx) => {
        ctx.raincheck(slow).timeout(20);
        ctx.body = 'ok';
      });
      const { app, rc } = appWith(router);
      await get(app, '/', 200);
      await rc.onIdle(); // the job has timed out: it no longer counts

      const { GET: server, slow: span } = await exported();
      const message = 'koa-raincheck: job slow() timed out after 20 ms';
      expect(parentOf(span)).to.equal(idOf(server));
      expect(span?.attributes).to.include({ 'koa_raincheck.job.state': 'timedOut' });
      expect(span?.status).to.deep.equal({ code: SpanStatusCode.ERROR, message });
      expect(span?.events.map((event) => event.attributes?.['exception.type'])).to.deep.equal([
        'RaincheckTimeoutError',
      ]);

      release.resolve();
      await done.promise;
      const spans = await exported();
      expect(parentOf(spans['after the timeout'])).to.equal(idOf(span));
    });

    it('a job coalesced into an identical one of another request: its span links to the one that ran', async () => {
      const started = deferred();
      const release = deferred();
      async function reindex(_id: number): Promise<void> {
        started.resolve();
        await release.promise;
      }
      const router = new Router();
      router.get('/', async (ctx) => {
        ctx.raincheck(reindex, 42).coalesce();
        ctx.body = 'ok';
      });
      const { app, rc } = appWith(router);
      await get(app, '/', 200);
      await started.promise;
      await get(app, '/', 200); // its reindex(42) joins the running one
      release.resolve();
      await rc.onIdle();

      await provider.forceFlush();
      const spans = exporter.getFinishedSpans();
      const [first, second] = spans.filter((span) => span.name === 'GET');
      const ran = spans.find((span) => span.name === 'reindex' && parentOf(span) === idOf(first));
      const joined = spans.find((span) => span.name === 'reindex' && parentOf(span) === idOf(second));
      expect(spans).to.have.length(4);
      expect(ran?.attributes).to.include({ 'koa_raincheck.job.state': 'succeeded' });
      expect(joined?.attributes).to.include({ 'koa_raincheck.job.state': 'coalesced' });
      expect(joined?.attributes).to.not.have.any.keys('koa_raincheck.job.wait_ms');
      expect(joined?.status).to.deep.equal({ code: SpanStatusCode.UNSET });
      expect(joined?.links.map((link) => link.context.spanId)).to.deep.equal([idOf(ran)]);
      expect(traceOf(joined)).to.equal(traceOf(second));
    });

    it('with keepContext: false, the parent is still the span active where the job was scheduled', async () => {
      const tracer = trace.getTracer('app');
      const router = new Router();
      router.get('/', async (ctx) => {
        ctx.raincheck(function detached() {
          tracer.startSpan('inside').end();
        });
        ctx.body = 'ok';
      });
      const { app, rc } = appWith(router, { keepContext: false });
      await get(app, '/', 200);
      await rc.onIdle();
      const { GET: server, detached, inside } = await exported();
      expect(parentOf(detached)).to.equal(idOf(server));
      expect(parentOf(inside)).to.equal(idOf(detached));
    });

    it('a job run at once outside any request: a child of the span active at the call, no request attributes', async () => {
      setOutsideRequest('run');
      try {
        const tracer = trace.getTracer('script');
        tracer.startActiveSpan('script', (span: Span) => {
          schedule(function rebuildIndex() {});
          span.end();
        });
      } finally {
        setOutsideRequest('throw'); // the default, which the other suites expect
      }
      const { script, rebuildIndex } = await exported();
      expect(parentOf(rebuildIndex)).to.equal(idOf(script));
      expect(rebuildIndex?.attributes).to.include({ 'koa_raincheck.job.state': 'succeeded' });
      expect(rebuildIndex?.attributes).to.not.have.any.keys('http.request.method', 'http.route');
    });

    it('stop(): ends the spans of running jobs, makes no more, and uninstalls itself; twice is refused', async () => {
      expect(() => traceJobs()).to.throw(Error, /already being traced/);
      const started = deferred();
      const release = deferred();
      const router = new Router();
      router.get('/', async (ctx) => {
        ctx.raincheck(function running() {
          started.resolve();
          return release.promise;
        });
        ctx.body = 'ok';
      });
      const { app, rc } = appWith(router);
      await get(app, '/', 200);
      await started.promise;

      stop();
      stop(); // again: nothing
      expect(instrument).to.equal(undefined);
      const { running } = await exported(); // ended by stop(), the job still running
      expect(running?.attributes).to.include({ 'koa_raincheck.job.state': 'running' });

      // Nothing more is traced: neither a job nor its drop.
      exporter.reset();
      let laterRan = deferred();
      router.get('/later', async (ctx) => {
        ctx.raincheck(function dropped() {}); // dropped: the status is 404
        ctx
          .raincheck(function later() {
            laterRan.resolve(); // so `dropped`, released first, has been dropped too
          })
          .always();
        ctx.status = 404;
      });
      await get(app, '/later', 404);
      await laterRan.promise; // the first job still runs: no onIdle()
      laterRan = deferred();
      expect(Object.keys(await exported())).to.deep.equal(['GET']);

      // Enabled again: new jobs are traced; the end of the one that started before makes no span.
      exporter.reset();
      stop = traceJobs();
      expect(instrument).to.not.equal(undefined);
      release.resolve();
      await get(app, '/later', 404);
      await rc.onIdle();
      expect(Object.keys(await exported()).sort()).to.deep.equal(['GET', 'dropped', 'later']);
    });
  });
}
