import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { expect } from 'chai';
import Koa from 'koa';
import request from 'supertest';
import {
  RaincheckJobError,
  RaincheckOutsideRequestError,
  raincheck,
  rainchecked,
  schedule,
  setOutsideRequest,
} from '../../src/index.js';
import { deferred, requestIds } from '../helpers.js';

/** A Koa app with its own AsyncLocalStorage, as the ctx-free API needs, and raincheck() mounted. */
function ambientApp(options?: Parameters<typeof raincheck>[0]) {
  const app = new Koa({ asyncLocalStorage: true });
  const errors: unknown[] = [];
  app.on('error', (error: unknown) => errors.push(error));
  const rc = raincheck(options);
  app.use(rc);
  return { app, rc, errors };
}

// A "service module": no ctx anywhere.
const sent: Array<{ to: string; subject: string }> = [];
const sendEmail = rainchecked(async function sendEmail(to: string, subject: string) {
  sent.push({ to, subject });
  return 'sent';
});
async function signUp(email: string): Promise<string> {
  sendEmail.schedule(email, 'Welcome');
  return `user ${email}`;
}

describe('rainchecked(fn).schedule(...args) and schedule(fn, ...args)', () => {
  beforeEach(() => {
    sent.length = 0;
  });
  afterEach(() => setOutsideRequest('throw'));

  it('schedules from service code without ctx; calling the wrapper still calls the function', async () => {
    const { app, rc } = ambientApp();
    let finishedBeforeJob: boolean | undefined;
    app.use(async (ctx) => {
      ctx.body = await signUp(String(ctx.query.email));
      schedule((res: typeof ctx.res) => {
        finishedBeforeJob = res.writableFinished;
      }, ctx.res);
    });
    await request(app.callback()).get('/?email=ann@example.com').expect(200, 'user ann@example.com');
    await rc.onIdle();
    expect(sent).to.deep.equal([{ to: 'ann@example.com', subject: 'Welcome' }]);
    expect(finishedBeforeJob).to.equal(true);
    expect(await sendEmail('direct@example.com', 'Now')).to.equal('sent');
    expect(sent).to.have.length(2);
    expect(sendEmail.name).to.equal('sendEmail');
  });

  it('follows the rules of ctx.raincheck(): dedupe (with it too), drops on failure, errors to the app', async () => {
    const { app, rc, errors } = ambientApp({ onDrop: () => {} });
    const audit = rainchecked(function audit(event: string) {
      if (event === 'bad') throw new Error('audit down');
    });
    const returned: boolean[] = [];
    app.use(async (ctx) => {
      returned.push(sendEmail.schedule('a@example.com', 'Hi').deduped);
      returned.push(ctx.raincheck(sendEmail, 'a@example.com', 'Hi').deduped); // the wrapper: the same job
      audit.schedule('bad');
      if (ctx.query.fail) ctx.throw(500);
      ctx.body = 'ok';
    });
    await request(app.callback()).get('/').expect(200);
    await request(app.callback()).get('/?fail=1').expect(500);
    await rc.onIdle();
    expect(sent).to.deep.equal([{ to: 'a@example.com', subject: 'Hi' }]); // the failed request's was dropped
    const jobErrors = errors.filter((e) => e instanceof RaincheckJobError) as RaincheckJobError[];
    expect(jobErrors.map((e) => e.message)).to.deep.equal(['koa-raincheck: job audit() failed: audit down']);
    expect(returned).to.deep.equal([false, true, false, true]);
  });

  it('dedupes .schedule() against ctx.raincheck() of the function it wraps', async () => {
    const { app, rc } = ambientApp();
    const inner = (n: number) => sent.push({ to: String(n), subject: '' });
    const wrapped = rainchecked(inner);
    const deduped: boolean[] = [];
    app.use(async (ctx) => {
      deduped.push(ctx.raincheck(inner, 1).deduped, wrapped.schedule(1).deduped, schedule(inner, 1).deduped);
      ctx.body = 'ok';
    });
    await request(app.callback()).get('/');
    await rc.onIdle();
    expect(deduped).to.deep.equal([false, true, true]);
    expect(sent).to.have.length(1);
  });

  it('lands each job on its own request when concurrent requests schedule through service code', async () => {
    const { app, rc } = ambientApp();
    const landed: Array<{ job: string; request: string }> = [];
    const record = rainchecked((job: string, request: string) => landed.push({ job, request }));
    async function service(id: string): Promise<void> {
      await new Promise((resolve) => setTimeout(resolve, (Number(id) * 7) % 19));
      record.schedule(id, (app.currentContext as Koa.Context).query.id as string);
    }
    app.use(async (ctx) => {
      const id = String(ctx.query.id);
      await service(id);
      ctx.body = id;
    });
    await requestIds(app, 50); // all at once, each answered with its own id
    await rc.onIdle();
    expect(landed).to.have.length(50);
    expect(landed.every(({ job, request }) => job === request)).to.equal(true);
    expect(new Set(landed.map(({ job }) => job)).size).to.equal(50);
  });

  it('runs a job scheduled from a timer set during the request, after its response has finished', async () => {
    const { app, rc } = ambientApp();
    const late = deferred<boolean>();
    app.use(async (ctx) => {
      const { res } = ctx;
      res.on('finish', () => {
        setTimeout(() => schedule(() => late.resolve(res.writableFinished)), 10);
      });
      ctx.body = 'ok';
    });
    await request(app.callback()).get('/').expect(200);
    expect(await late.promise).to.equal(true);
    await rc.onIdle();
  });

  describe('outside any request', () => {
    it('throws RaincheckOutsideRequestError by default, naming the fix', () => {
      expect(() => sendEmail.schedule('x@example.com', 'Hi')).to.throw(
        RaincheckOutsideRequestError,
        /sendEmail\(\) was scheduled outside any request handled by raincheck\(\)\. In a Koa app, create it with new Koa\(\{ asyncLocalStorage: true \}\)/,
      );
      expect(() => schedule(() => {}))
        .to.throw(RaincheckOutsideRequestError)
        .with.property('reason', 'no-request');
      expect(sent).to.deep.equal([]);
    });

    it('throws too inside a request of an app without Koa’s asyncLocalStorage: the request cannot be found', async () => {
      const app = new Koa();
      const rc = raincheck();
      app.use(rc);
      let thrown: unknown;
      app.use(async (ctx) => {
        try {
          sendEmail.schedule('x@example.com', 'Hi');
        } catch (error) {
          thrown = error;
        }
        ctx.body = 'ok';
      });
      await request(app.callback()).get('/').expect(200);
      expect(thrown).to.be.instanceOf(RaincheckOutsideRequestError);
      // Not taken for a Koa before 2.14 (test/http/koa-versions.test.ts): this one has the option, unused.
      expect((thrown as RaincheckOutsideRequestError).reason).to.equal('no-request');
    });

    it("runs at once with { outside: 'run' }, and reports a failure as a process warning", async () => {
      const ran: string[] = [];
      const script = rainchecked((name: string) => ran.push(name), { outside: 'run' });
      const scheduled = script.schedule('from a script');
      expect(ran).to.deep.equal(['from a script']);
      expect(scheduled.job.state).to.equal('succeeded');

      const warning = deferred<Error>();
      const onWarning = (w: Error) => warning.resolve(w);
      process.on('warning', onWarning);
      try {
        const failing = rainchecked(
          async function nightly() {
            throw new Error('no db');
          },
          { outside: 'run' },
        );
        failing.schedule();
        const reported = await warning.promise;
        expect(reported).to.be.instanceOf(RaincheckJobError);
        expect(reported.message).to.equal('koa-raincheck: job nightly() failed: no db');
      } finally {
        process.off('warning', onWarning);
      }
    });

    it("follows setOutsideRequest('run') for schedule() and wrappers without their own option", () => {
      const ran: number[] = [];
      setOutsideRequest('run');
      schedule((n: number) => ran.push(n), 1);
      rainchecked((n: number) => ran.push(n)).schedule(2);
      expect(() => rainchecked((n: number) => ran.push(n), { outside: 'throw' }).schedule(3)).to.throw(
        RaincheckOutsideRequestError,
      );
      expect(ran).to.deep.equal([1, 2]);
    });

    it('throws a TypeError for bad input', () => {
      expect(() => rainchecked('sendEmail' as never)).to.throw(
        TypeError,
        'Expected `fn` to be a function, got `string`',
      );
      expect(() => schedule(null as never)).to.throw(TypeError, 'Expected `fn` to be a function, got `null`');
      expect(() => rainchecked(() => {}, { outside: 'later' as never })).to.throw(
        TypeError,
        "Expected `options.outside` to be 'throw' or 'run', got `'later'`",
      );
      expect(() => setOutsideRequest(true as never)).to.throw(
        TypeError,
        "Expected `behaviour` to be 'throw' or 'run', got `boolean`",
      );
    });
  });

  it('finds the request when the app and the service code use two copies of the package', async () => {
    // A second copy of the built package on disk, as npm can leave in one node_modules tree.
    const root = new URL('../../', import.meta.url).pathname;
    const copy = mkdtempSync(join(root, 'node_modules', '.raincheck-second-copy-'));
    cpSync(join(root, 'dist'), copy, { recursive: true });
    writeFileSync(join(copy, 'package.json'), '{ "type": "module" }');
    after(() => rmSync(copy, { recursive: true, force: true }));
    const first = 'koa-raincheck';
    const copyA = (await import(first)) as typeof import('../../src/index.js');
    const copyB = (await import(
      pathToFileURL(join(copy, 'index.js')).href
    )) as typeof import('../../src/index.js');
    expect(copyA.schedule).to.not.equal(copyB.schedule);
    const app = new Koa({ asyncLocalStorage: true });
    const rc = copyA.raincheck();
    app.use(rc);
    const ran: string[] = [];
    app.use(async (ctx) => {
      copyB.schedule((s: string) => ran.push(s), 'scheduled through the other copy');
      ctx.body = 'ok';
    });
    await request(app.callback()).get('/').expect(200);
    await rc.onIdle();
    expect(ran).to.deep.equal(['scheduled through the other copy']);
  });
});
