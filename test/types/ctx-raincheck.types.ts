// Compile-only type test, never run: `npm test` type-checks this file, and fails if a line under an
// expect-error directive compiles or any other line does not.
import Router from '@koa/router';
import Koa, { type Context } from 'koa';
import raincheck, {
  type Job,
  type RaincheckJobError,
  type ResponseOutcome,
  rainchecked,
  type Scheduled,
  schedule,
  setOutsideRequest,
} from '../../src/index.js';

declare function sendEmail(to: string, subject: string, body: string): Promise<void>;
declare function audit(event: { type: 'signup'; userId: number }, at?: Date): void;
declare function noArgs(): void;

const app = new Koa();
app.use(raincheck({ dedupe: true, runAsync: true, immediate: false }));
app.use(async (ctx) => {
  const scheduled: Scheduled = ctx.raincheck(sendEmail, 'a@example.com', 'Hi', 'body');
  const deduped: boolean = scheduled.deduped;
  const job: Job = scheduled.job;
  void [deduped, job];
  ctx.raincheck(sendEmail, 'a@example.com', 'Hi', 'body').always();
  ctx.raincheck(audit, { type: 'signup', userId: 1 });
  ctx.raincheck(audit, { type: 'signup', userId: 1 }, new Date());
  ctx.raincheck(noArgs);
  ctx.raincheck(async () => {});

  // @ts-expect-error a wrong argument type
  ctx.raincheck(sendEmail, 'a@example.com', 'Hi', 42);
  // @ts-expect-error a missing argument
  ctx.raincheck(sendEmail, 'a@example.com', 'Hi');
  // @ts-expect-error an extra argument
  ctx.raincheck(noArgs, 1);
  // @ts-expect-error a wrong property type in an object argument
  ctx.raincheck(audit, { type: 'login', userId: 1 });
  // @ts-expect-error not a function
  ctx.raincheck('sendEmail');
});

// Route handlers of @koa/router see it too.
const router = new Router();
router.get('/', (ctx) => {
  ctx.raincheck(sendEmail, 'a@example.com', 'Hi', 'body');
  // @ts-expect-error a wrong argument type in a router handler
  ctx.raincheck(sendEmail, 1, 'Hi', 'body');
});

// Options are typed.
raincheck({
  runWhen: (outcome: ResponseOutcome) => outcome.status < 500 && !outcome.aborted,
  onError: (error: RaincheckJobError, job: Job, ctx: Context) => {
    ctx.app.emit('error', error, ctx);
    void job.name;
  },
  onDrop: (job: Job, outcome: ResponseOutcome) => console.log(job.name, outcome.status),
});
// @ts-expect-error an option of the wrong type
raincheck({ dedupe: 'yes' });
// @ts-expect-error an unknown option
raincheck({ runAsnyc: false });

// The middleware waits for its jobs.
const rc = raincheck();
const idle: Promise<void> = rc.onIdle();
const pending: number = rc.pending;
void [idle, pending];

// Scheduling without ctx keeps the types of the function.
const sendWelcome = rainchecked(sendEmail);
const direct: Promise<void> = sendWelcome('a@example.com', 'Hi', 'body'); // still the function
const viaSchedule: Scheduled = sendWelcome.schedule('a@example.com', 'Hi', 'body');
void [direct, viaSchedule];
// @ts-expect-error a wrong argument type to .schedule()
sendWelcome.schedule('a@example.com', 'Hi', 42);
// @ts-expect-error a missing argument to .schedule()
sendWelcome.schedule('a@example.com');
schedule(audit, { type: 'signup', userId: 1 });
// @ts-expect-error a wrong argument type to schedule()
schedule(audit, { type: 'signup', userId: '1' });
rainchecked(noArgs, { outside: 'run' }).schedule();
// @ts-expect-error an unknown outside behaviour
rainchecked(noArgs, { outside: 'later' });
setOutsideRequest('run');

// An inline callback without annotations: its parameters are `any` (not `never`), so it can be scheduled.
const inline = rainchecked(async (to, name) => `${to} ${name}`);
inline.schedule('ann@example.com', 'Ann');
// A callback with annotations keeps them.
const annotated = rainchecked(async (to: string) => to);
// @ts-expect-error a wrong argument type to an annotated inline callback's .schedule()
annotated.schedule(42);
