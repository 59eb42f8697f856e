import { fileURLToPath, pathToFileURL } from 'node:url';

/**
 * Where jobs were scheduled, with the `callSite` option: the stack of the call that made the job, captured
 * there and formatted only when read (a failure's report, `job.scheduledAt`).
 *
 * Captured unformatted, a stack holds the receivers and functions of its frames (Koa's `ctx` among them)
 * until it is formatted; so a job that settles lets go of it (`settleCallSite`), unless it failed or timed
 * out, which keeps it as text.
 */

/** Frames the library's own calls take above the user's call: kept on top of `Error.stackTraceLimit`. */
const LIBRARY_FRAMES = 8;

/** What `Error.captureStackTrace` fills in: a `stack` formatted on first read. */
interface Holder {
  stack?: string;
}

/**
 * Where a job keeps its call site (its `asked` record, see job.ts): the captured stack, then its text. Only
 * this much of a job is known here, so that job.ts can import this file and not the other way round.
 */
export interface CallSiteRecord {
  callSite: unknown;
}

/** The part of a job read here: its record, if it has one, and how it ended. */
interface JobLike {
  readonly asked: CallSiteRecord | undefined;
  readonly state: string;
}

/**
 * Captures the stack of the scheduling call into `record` (the new job's). Called where the job is made,
 * once per job.
 */
export function captureCallSite(record: CallSiteRecord): void {
  const holder: Holder = {};
  const limit = Error.stackTraceLimit;
  if (typeof limit === 'number') Error.stackTraceLimit = limit + LIBRARY_FRAMES;
  try {
    Error.captureStackTrace(holder, captureCallSite);
  } finally {
    if (typeof limit === 'number') Error.stackTraceLimit = limit;
  }
  record.callSite = holder;
}

/**
 * The call site of `job` as text (its frames outside koa-raincheck, one `    at ...` line each), formatted
 * on first read; `undefined` when none was captured, or when the job settled without failing.
 */
export function callSiteOf(job: JobLike): string | undefined {
  const asked = job.asked;
  const site = asked?.callSite;
  if (site === undefined || typeof site === 'string') return site;
  const text = userFrames((site as Holder).stack);
  (asked as CallSiteRecord).callSite = text; // the frames go: only the text stays
  return text;
}

/**
 * A job settled (ran, was dropped, or joined another): one that failed or timed out keeps its call site as
 * text, for reports read later; the others let go of it.
 */
export function settleCallSite(job: JobLike): void {
  const asked = job.asked;
  if (asked === undefined || asked.callSite === undefined) return;
  if (job.state === 'failed' || job.state === 'timedOut') callSiteOf(job);
  else asked.callSite = undefined;
}

/** The errors whose stack already names their job's call site. */
const annotated = new WeakSet<Error>();

/**
 * Adds a `scheduled at:` section to a job's error report, after its own frames: the frames of the call that
 * scheduled the job, those of koa-raincheck left out. Once per error.
 */
export function withCallSite<E extends Error>(error: E, job: JobLike): E {
  const site = callSiteOf(job);
  if (site === undefined || site === '' || annotated.has(error)) return error;
  annotated.add(error);
  try {
    error.stack = `${String(error.stack)}\nscheduled at:\n${site}`;
  } catch {
    // A frozen error, or a `stack` setter that throws: the report goes out without the call site.
  }
  return error;
}

/**
 * The library's own directory (src/, dist/ or dist/cjs/), as a path and as a file URL: frames in it are left
 * out. Read from this file's own frame, which names it in ESM (a file URL) and CommonJS (a path) alike:
 * `import.meta` is not there in the CommonJS build.
 */
const ownPaths = ownDirectory();

function ownDirectory(): string[] {
  const frame = new Error().stack?.split('\n')[1] ?? '';
  const file = /\(?([^\s()]+):\d+:\d+\)?$/.exec(frame)?.[1];
  if (file === undefined) return [];
  const dir = file.slice(0, file.lastIndexOf('/') + 1);
  return dir.startsWith('file:') ? [dir, fileURLToPath(dir)] : [dir, pathToFileURL(dir).href];
}

/** The `at` lines of a formatted stack that are not the library's own. */
function userFrames(stack: string | undefined): string {
  if (typeof stack !== 'string') return '';
  const lines = stack.split('\n');
  const frames: string[] = [];
  for (const line of lines) {
    if (!line.startsWith('    at ')) continue; // the header ("Error"), or a line of its message
    if (ownPaths.some((own) => line.includes(own))) continue;
    frames.push(line);
  }
  return frames.join('\n');
}
