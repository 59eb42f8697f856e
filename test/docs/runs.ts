// How each block marked `<!-- docs-test: run NAME -->` is run: the doubles of the names it leaves free, the
// rest of the app when it shows only part of one, the requests it gets, and what it must print. Preludes
// and epilogues are JavaScript put around the block in one file; their own names start with `__` so that
// they never clash with the block's.

export interface HttpRequest {
  readonly method: string;
  /** Path and query. */
  readonly path: string;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: string;
}

export interface Run {
  /** Put before the block: doubles of the names it uses without defining them. */
  readonly prelude?: string;
  /** Put after the block: what a block that shows part of an app leaves out. */
  readonly epilogue?: string;
  /**
   * The block's app listens, and gets these requests (or the curl lines of the block marked
   * `<!-- docs-test: requests NAME -->`); then it is sent `stop.signal`. Without requests nor `stop`, the
   * block runs to its end and must exit with 0.
   */
  readonly requests?: readonly HttpRequest[];
  /** The status of each response, in order. */
  readonly statuses?: readonly number[];
  /** Lines the run must print, each exactly once. */
  readonly prints?: readonly string[];
  /** Lines an app that listens must print after its last response was over (a job's work), each once. */
  readonly after?: readonly string[];
  /** How an app that listens is stopped, and the exit code expected then (any, if not given). */
  readonly stop?: { readonly signal: NodeJS.Signals; readonly exitCode?: number };
  /**
   * Runtimes on which `prints` and `after` are not checked, each with its reason: a behaviour of that
   * runtime's own, named (test/runtime.ts's `gatedOn()` prints it). The exit code and statuses still are.
   */
  readonly printsGatedOn?: Readonly<Partial<Record<'bun' | 'deno', string>>>;
}

const koaApp = `const { default: __Koa } = await import('koa');
const { raincheck: __raincheck } = await import('koa-raincheck');`;

export const runs: Readonly<Record<string, Run>> = {
  // The README's first example: the smallest app that schedules a job.
  'first-app': {
    requests: [{ method: 'GET', path: '/' }],
    statuses: [200],
    after: ['welcome email sent to ann@example.com'],
  },

  'quick-start': {
    statuses: [201],
    after: ['welcome email sent to Ann <ann@example.com>'],
  },

  commonjs: {
    epilogue: `if (typeof raincheck !== 'function') throw new TypeError('raincheck is not a function');
console.log(\`middleware: \${app.middleware.map((fn) => fn.name).join(', ')}\`);`,
    prints: ['middleware: raincheck'],
  },

  'without-ctx': {
    prelude: `const mailer = { async send(message) { console.log(\`mailer.send \${JSON.stringify(message)}\`); } };
const db = { users: { async insert(user) { return { id: 1, ...user }; } } };`,
    requests: [
      {
        method: 'POST',
        path: '/signup',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ email: 'ann@example.com', name: 'Ann' }),
      },
    ],
    statuses: [200],
    after: ['mailer.send {"to":"ann@example.com","subject":"Welcome, Ann!"}'],
  },

  // A metrics client that, like real ones, throws when a histogram is given something else than a number.
  diagnostics: {
    // The block subscribes by name before koa-raincheck (which holds its channels) is loaded, and Bun 1.4.5
    // holds a channel weakly even while it has subscribers: a garbage collection in between drops the
    // subscription, and whether one comes is up to the GC. Node and Deno keep it.
    printsGatedOn: {
      bun: 'diagnostics_channel.subscribe(name, fn) is lost if a GC runs before anything holds the channel (oven-sh/bun#43086)',
    },
    prelude: `const metrics = {
  increment(name, tags) { console.log(JSON.stringify(['increment', name, tags])); },
  histogram(name, value, tags) {
    if (typeof value !== 'number' || !Number.isFinite(value)) throw new TypeError(\`\${name}: not a number: \${value}\`);
    console.log(JSON.stringify(['histogram', name, tags]));
  },
};`,
    epilogue: `${koaApp}
const __app = new __Koa();
const __rc = __raincheck();
__app.use(__rc);
__app.use((ctx) => {
  ctx.raincheck(function welcome() {});
  if (ctx.path === '/missing') ctx.status = 404; // a failed request: its job is dropped, never started
  else ctx.body = 'ok';
});
const __server = __app.listen(0);
await new Promise((resolve) => __server.once('listening', resolve));
for (const path of ['/', '/missing']) await (await fetch(\`http://127.0.0.1:\${__server.address().port}\${path}\`)).text();
await __rc.onIdle();
__server.closeAllConnections();
__server.close();`,
    prints: [
      '["increment","raincheck.jobs",{"job":"welcome","state":"succeeded"}]',
      '["histogram","raincheck.job.duration",{"job":"welcome","state":"succeeded"}]',
      '["increment","raincheck.jobs",{"job":"welcome","state":"dropped"}]',
    ],
  },

  dedupe: {
    prelude: `${koaApp}
const app = new __Koa();
app.use(__raincheck());
async function sendWelcomeEmail(to, name) { console.log(\`sendWelcomeEmail(\${to}, \${name})\`); }`,
    epilogue: 'app.listen(3000);',
    requests: [{ method: 'GET', path: '/' }],
    statuses: [200],
    prints: ['false true true'],
    after: ['sendWelcomeEmail(ann@example.com, Ann)'],
  },

  'on-error': {
    prelude: `${koaApp}
const app = new __Koa();
const logger = {
  error(fields, message) { console.log(\`logger.error \${fields.job} \${fields.path} \${fields.err.message}: \${message}\`); },
};`,
    epilogue: `app.use(__raincheck());
app.use((ctx) => {
  ctx.raincheck(async function chargeCard() { throw new Error('card declined'); });
  ctx.body = 'ok';
});
app.listen(3000);`,
    requests: [{ method: 'GET', path: '/' }],
    statuses: [200],
    after: ['logger.error chargeCard / card declined: koa-raincheck: job chargeCard() failed: card declined'],
  },

  shutdown: {
    prelude: `${koaApp}
const app = new __Koa();`,
    requests: [],
    stop: { signal: 'SIGTERM', exitCode: 0 },
  },

  // The routes under test schedule a job that takes a while, so the check passes only if onIdle() waits.
  testing: {
    prelude: `const mailer = { sent: [], async send(message) { mailer.sent.push(message); } };
async function signupRoutes(ctx) {
  if (ctx.method !== 'POST' || ctx.path !== '/signup') return;
  ctx.raincheck(async function sendWelcomeEmail(to) {
    await new Promise((resolve) => setTimeout(resolve, 50)); // a slow mail server
    await mailer.send({ to, subject: 'Welcome!' });
  }, 'ann@example.com');
  ctx.status = 201;
}
const it = (title, test) => test().then(() => console.log(\`passed: \${title}\`));`,
    prints: ['passed: sends the welcome email after the response'],
  },
};
