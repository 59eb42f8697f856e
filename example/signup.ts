// A small signup service that does its slow work after the response.
// Run it with `npm run example`: it starts on a free port, sends itself a few requests, prints a timeline
// and exits. In your own app, import from 'koa-raincheck' instead of '../src/index.js'.
import type { AddressInfo } from 'node:net';
import Koa from 'koa';
import { RaincheckJobError, raincheck } from '../src/index.js';
import { runTransactions } from './transactions.js';

const started = performance.now();
const at = () => `${String(Math.round(performance.now() - started)).padStart(5)} ms`;
const log = (line: string) => console.log(`${at()}  ${line}`);

// --- Jobs: ordinary functions, called later with the arguments given to ctx.raincheck() ---

async function sendWelcomeEmail(to: string, name: string): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, 300)); // a slow SMTP server
  log(`job     sendWelcomeEmail(${to}) finished: "Welcome, ${name}!"`);
}

function writeAuditLog(event: { type: string; email: string }): void {
  log(`job     writeAuditLog(${event.type} ${event.email}) finished`);
}

async function notifySlack(channel: string): Promise<void> {
  await Promise.resolve();
  throw new Error(`Slack webhook for ${channel} returned 500`);
}

// --- The app ---

const app = new Koa();
app.silent = true; // this example prints job errors itself, below
app.on('error', (error: unknown) => {
  if (error instanceof RaincheckJobError) log(`error   ${error.message} (reported, server still up)`);
  else if (!(error as { expose?: boolean }).expose) log(`error   ${String(error)}`);
});

const rc = raincheck({
  onDrop: (job, outcome) => log(`dropped ${job.name}(): the response status was ${outcome.status}`),
});
app.use(rc);

app.use(async (ctx, next) => {
  ctx.res.once('finish', () => log(`server  response ${ctx.status} handed to the socket`));
  await next();
});

app.use(async (ctx) => {
  if (ctx.method !== 'POST' || ctx.path !== '/signup') ctx.throw(404);
  const email = String(ctx.query.email ?? '');
  const name = String(ctx.query.name ?? 'friend');
  ctx.raincheck(writeAuditLog, { type: 'signup-attempt', email });
  if (!email.includes('@')) ctx.throw(400, 'a valid email is required');

  const first = ctx.raincheck(sendWelcomeEmail, email, name);
  const second = ctx.raincheck(sendWelcomeEmail, email, name); // the same call again: collapsed
  log(`handler queued sendWelcomeEmail twice: deduped = [${first.deduped}, ${second.deduped}]`);
  if (ctx.query.slack) ctx.raincheck(notifySlack, '#signups');

  ctx.status = 201;
  ctx.body = { ok: true };
});

// --- Drive it ---

const server = app.listen(0, '127.0.0.1');
await new Promise((resolve) => server.once('listening', resolve));
const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

/** One request, then waits for its jobs with rc.onIdle() and sums up. */
async function signup(title: string, query: string): Promise<void> {
  console.log(title);
  log(`client  POST /signup?${query}`);
  const sent = performance.now();
  const response = await fetch(`${base}/signup?${query}`, { method: 'POST' });
  await response.text();
  const answered = performance.now();
  log(`client  got ${response.status}`);
  await rc.onIdle();
  const ms = (from: number, to: number) => Math.round(to - from);
  console.log(
    `         => response returned after ${ms(sent, answered)} ms; ` +
      `its jobs settled ${ms(answered, performance.now())} ms later\n`,
  );
}

console.log(`koa-raincheck example: jobs run after the response has been sent.

"Sent" means handed to the socket: Node has written the whole response to the connection (its 'finish'
event: the "server  response ... handed to the socket" lines). The client reads it a moment later, so a
quick job can finish before the "client  got ..." line: it still started only after its response had
left the server. What matters is that the response never waits for its jobs ("response returned after").
`);
await signup(
  '1. A signup: its audit log and welcome email run after the response; the email, queued twice, runs once.',
  'email=ann@example.com&name=Ann',
);
await signup(
  "2. A signup with a Slack notification that fails: reported on app 'error', the other jobs still run.",
  'email=bob@example.com&name=Bob&slack=1',
);
await signup(
  '3. An invalid email: the handler throws a 400, so the audit job it had queued is dropped, and the drop reported.',
  'email=not-an-email',
);
await signup(
  '4. Another signup: the server is still up after the failed job.',
  'email=cat@example.com&name=Cat',
);

server.close();

console.log(
  '\nJobs that follow the database transaction (PGlite, PostgreSQL in WebAssembly: no server). An order\n' +
    'schedules its confirmation inside its transaction, under atomic(): it runs only if the transaction\n' +
    'commits. The second order is sold out: its transaction rolls back, the handler still answers 200, and\n' +
    'the confirmation is dropped.\n',
);
await runTransactions(log);
console.log('\nAll jobs settled; servers closed.');
