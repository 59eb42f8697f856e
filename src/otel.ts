import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import {
  type Attributes,
  type Context,
  context,
  type Span,
  type SpanContext,
  SpanKind,
  type SpanOptions,
  SpanStatusCode,
  type Tracer,
  trace,
} from '@opentelemetry/api';
import { describe } from './errors.js';
import { type Instrument, instrument, setInstrument } from './instrument.js';
import type { Job } from './job.js';
import { dropReason, dropReasonOf, type ResponseOutcome } from './options.js';
import { warnHookFailed } from './report.js';
import { typeName } from './type-name.js';

/** The options of `traceJobs()`. */
export interface TraceJobsOptions {
  /**
   * The tracer that makes the job spans.
   * @default trace.getTracer('koa-raincheck', version): the global tracer provider's, which is the
   * registered one even if it is registered after this call
   */
  readonly tracer?: Tracer | undefined;
}

// The span attributes. Names of this package's own under `koa_raincheck.job.`; the request's as the HTTP
// semantic conventions name them, so a backend can group job spans by the route that made them.
const NAME = 'koa_raincheck.job.name';
const STATE = 'koa_raincheck.job.state';
const WAIT_MS = 'koa_raincheck.job.wait_ms';
const DEDUPED = 'koa_raincheck.job.deduped';
const COLLAPSED_CALLS = 'koa_raincheck.job.collapsed_calls';
const DROP_REASON = 'koa_raincheck.job.drop_reason';
const METHOD = 'http.request.method';
const ROUTE = 'http.route';

/** What is known of a job from its scheduling on. */
interface Traced {
  /** `performance.now()` when it was scheduled; `undefined` for a job scheduled before tracing began. */
  readonly scheduledAt: number | undefined;
  /** The OpenTelemetry context active where it was scheduled: its span's parent. */
  readonly parent: Context;
  /** Its span, once its function has been called. */
  span: Span | undefined;
}

/**
 * Makes each job a span from now on, until the returned function is called: an INTERNAL span named after
 * the job, a child of the span active where the job was scheduled (the request's span, for
 * `ctx.raincheck()`), around the job's function, so that the spans the job makes are its children. A job
 * that fails or times out records the exception and sets the status to error; a job that is dropped gets a
 * span too, from its scheduling to its drop. The attributes are listed in docs/tracing.md.
 *
 * It needs an OpenTelemetry context manager, which every Node SDK setup registers
 * (`AsyncLocalStorageContextManager`): without one no span is ever active, and job spans have no parent.
 * @returns a function that stops tracing jobs: later jobs get no span, and the spans of jobs still running
 * are ended then, with the state `'running'`. Calling it again does nothing.
 * @throws {TypeError} when `options` is not an object or `options.tracer` not a tracer.
 * @throws {Error} when jobs are already being traced (call the function the earlier call returned first).
 */
export function traceJobs(options?: TraceJobsOptions): () => void {
  const tracer = resolveTracer(options);
  if (instrument !== undefined) {
    throw new Error(
      'koa-raincheck: jobs are already being traced; call the function traceJobs() returned to stop it first',
    );
  }
  // One record per job while it is pending, dropped with the job; the started ones are also listed, so
  // that stopping can end their spans rather than leave them open for ever.
  const traced = new WeakMap<Job, Traced>();
  const running = new Map<Job, Span>();
  /** The span of each job that started, for the jobs of other requests that join it (`coalesce()`). */
  const started = new WeakMap<Job, SpanContext>();

  const tracing: Instrument = {
    scheduled(job) {
      try {
        traced.set(job, { scheduledAt: performance.now(), parent: context.active(), span: undefined });
      } catch (error) {
        warnHookFailed('traceJobs', error);
      }
    },

    // A child of the span active at scheduling, not a link to it, although that span (the request's) has
    // usually ended when the job starts: the HTTP instrumentation ends it on the response's 'close', the
    // event that starts the jobs. OpenTelemetry lets a child end after its parent; a child keeps the job in
    // the request's trace, where one looks for what the request caused (Next.js runs after() callbacks in
    // the registering call's context, so their spans are the request's children), and sampled with it,
    // where a link would make every job the root of a trace of its own. docs/tracing.md says more.
    run(job, ctx, call) {
      let active: Context;
      try {
        const record = traced.get(job);
        const parent = record?.parent ?? context.active();
        const attributes: Attributes = { [NAME]: job.name };
        if (record?.scheduledAt !== undefined) attributes[WAIT_MS] = performance.now() - record.scheduledAt;
        addRequest(attributes, ctx);
        const span = tracer.startSpan(job.name, { kind: SpanKind.INTERNAL, attributes }, parent);
        if (record === undefined) traced.set(job, { scheduledAt: undefined, parent, span });
        else record.span = span;
        running.set(job, span);
        started.set(job, span.spanContext());
        active = trace.setSpan(parent, span);
      } catch (error) {
        warnHookFailed('traceJobs', error);
        return call(); // the job runs whatever becomes of its span
      }
      // Inside its span, so that what it calls is traced as its children.
      return context.with(active, call);
    },

    ended(job, ctx, error, outcome) {
      try {
        const record = traced.get(job);
        traced.delete(job);
        let span = record?.span;
        let endTime: number | undefined;
        if (span === undefined) {
          // Started, but before tracing began (or before a stop(), which ended its span if it had one).
          if (job.state === 'succeeded' || job.state === 'failed' || job.state === 'timedOut') return;
          // Never started (dropped, or coalesced into an identical job): a span from its scheduling to its
          // end (the time it was kept waiting), both read from `performance.now()`, which OpenTelemetry
          // takes as a time. A coalesced job links to the span of the job it joined, if that one started:
          // the work done for it is there, in another request's trace.
          const parent = record?.parent ?? scheduledContext(job);
          const attributes: Attributes = { [NAME]: job.name };
          addRequest(attributes, ctx);
          const spanOptions: SpanOptions = { kind: SpanKind.INTERNAL, attributes };
          endTime = performance.now();
          spanOptions.startTime = record?.scheduledAt ?? endTime;
          const joined = job.joined === undefined ? undefined : started.get(job.joined);
          if (joined !== undefined) spanOptions.links = [{ context: joined }];
          span = tracer.startSpan(job.name, spanOptions, parent);
        } else {
          running.delete(job);
        }
        finish(span, job, error, outcome);
        span.end(endTime);
      } catch (caught) {
        warnHookFailed('traceJobs', caught);
      }
    },
  };

  const previous = setInstrument(tracing);
  return () => {
    if (instrument !== tracing) return; // already stopped
    setInstrument(previous);
    for (const [job, span] of running) {
      span.setAttribute(STATE, job.state);
      span.end();
    }
    running.clear();
  };
}

function resolveTracer(options: TraceJobsOptions | undefined): Tracer {
  if (options === undefined) return defaultTracer();
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new TypeError(`Expected \`options\` to be an object, got \`${typeName(options)}\``);
  }
  for (const name of Object.keys(options)) {
    if (name !== 'tracer') throw new TypeError(`Unknown option \`${name}\`; expected \`tracer\``);
  }
  const tracer = options.tracer as Partial<Tracer> | null | undefined;
  if (tracer === undefined) return defaultTracer();
  if (typeof tracer?.startSpan !== 'function') {
    throw new TypeError(
      `Expected \`options.tracer\` to be an OpenTelemetry Tracer, got \`${typeName(tracer)}\``,
    );
  }
  return tracer as Tracer;
}

function defaultTracer(): Tracer {
  return trace.getTracer('koa-raincheck', ownVersion());
}

/** This package's version, for the tracer's instrumentation scope; none when bundled without package.json. */
function ownVersion(): string | undefined {
  try {
    // src/ and dist/ both sit right under the package's root.
    const manifest = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
    return typeof manifest.version === 'string' ? manifest.version : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The context a job was scheduled in, for a job scheduled before tracing began: its scope's, or, with
 * `keepContext: false` (no scope), the one active now.
 */
function scheduledContext(job: Job): Context {
  return job.scope === undefined ? context.active() : job.scope.runInAsyncScope(() => context.active());
}

/** The request's method and route (as @koa/router sets it), when the job belongs to a request. */
function addRequest(attributes: Attributes, ctx: unknown): void {
  if (typeof ctx !== 'object' || ctx === null) return; // a job run outside any request
  const { method, _matchedRoute: route } = ctx as { method?: unknown; _matchedRoute?: unknown };
  if (typeof method === 'string') attributes[METHOD] = method;
  if (typeof route === 'string') attributes[ROUTE] = route;
  else if (route instanceof RegExp) attributes[ROUTE] = String(route);
}

/** The attributes and status of a job that has ended in `job.state`. */
function finish(span: Span, job: Job, error: unknown, outcome: ResponseOutcome | undefined): void {
  // Read now, not at the start: a later identical call of the request may still collapse into a running job.
  span.setAttributes({
    [STATE]: job.state,
    [DEDUPED]: job.collapsedCalls > 0,
    [COLLAPSED_CALLS]: job.collapsedCalls,
  });
  if (job.state === 'dropped') {
    // Dropped because `runWhen` said no or every call was cancelled: not an error of the job. Turned away
    // by `maxWaiting`: an error, the overflow's.
    if (outcome !== undefined) span.setAttribute(DROP_REASON, dropReason(outcome, dropReasonOf(job)));
    else {
      span.setAttribute(DROP_REASON, describe(error));
      span.setStatus({ code: SpanStatusCode.ERROR, message: describe(error) });
    }
  } else if (job.state === 'failed' || job.state === 'timedOut') {
    span.recordException(error instanceof Error ? error : describe(error));
    span.setStatus({ code: SpanStatusCode.ERROR, message: describe(error) });
  }
  // A job that succeeded keeps the status UNSET: OpenTelemetry leaves OK to the application.
}
