import { expect } from 'chai';
import request from 'supertest';
import { type Job, RaincheckJobError } from '../../src/index.js';
import { appWith, deferred } from '../helpers.js';

describe('raincheck({ onError })', () => {
  const failures = {
    throwsSync: function sendEmail(): void {
      throw new Error('smtp down');
    },
    rejects: async function writeAudit(): Promise<void> {
      await Promise.resolve();
      throw new Error('db down');
    },
    throwsNonError: function ping(): void {
      throw 'just a string';
    },
  };

  // Any unhandled rejection or uncaught exception while these tests run fails them.
  const escaped: unknown[] = [];
  const onEscape = (error: unknown) => escaped.push(error);
  beforeEach(() => {
    escaped.length = 0;
    process.on('unhandledRejection', onEscape);
    process.on('uncaughtException', onEscape);
  });
  afterEach(() => {
    process.off('unhandledRejection', onEscape);
    process.off('uncaughtException', onEscape);
    expect(escaped).to.deep.equal([]);
  });

  for (const runAsync of [true, false]) {
    it(`reports every kind of failure to app 'error' and runs the other jobs (runAsync: ${runAsync})`, async () => {
      const { app, rc, errors } = appWith({ runAsync });
      const ran: string[] = [];
      app.use(async (ctx) => {
        ctx.raincheck(failures.throwsSync);
        ctx.raincheck(() => ran.push('after a sync throw'));
        ctx.raincheck(failures.rejects);
        ctx.raincheck(() => ran.push('after a rejection'));
        ctx.raincheck(failures.throwsNonError);
        ctx.raincheck(() => ran.push('after a non-Error'));
        ctx.body = 'untouched';
      });
      await request(app.callback()).get('/').expect(200, 'untouched');
      await rc.onIdle();
      expect(ran).to.deep.equal(['after a sync throw', 'after a rejection', 'after a non-Error']);
      expect(errors).to.have.length(3);
      for (const { error } of errors) expect(error).to.be.instanceOf(RaincheckJobError);
      const messages = errors.map(({ error }) => (error as Error).message).sort();
      expect(messages).to.deep.equal([
        "koa-raincheck: job ping() failed: 'just a string'",
        'koa-raincheck: job sendEmail() failed: smtp down',
        'koa-raincheck: job writeAudit() failed: db down',
      ]);
      const causes = errors.map(({ error }) => (error as RaincheckJobError).cause);
      expect(causes).to.include('just a string');
      expect(errors.every(({ ctx }) => ctx.path === '/')).to.equal(true);
    });
  }

  it('keeps the stack of the original error, under a message that names the job', async () => {
    const { app, rc, errors } = appWith();
    app.use(async (ctx) => {
      ctx.raincheck(failures.throwsSync);
      ctx.body = 'ok';
    });
    await request(app.callback()).get('/');
    await rc.onIdle();
    const error = errors[0]?.error as RaincheckJobError;
    expect(error.stack).to.match(
      /^RaincheckJobError: koa-raincheck: job sendEmail\(\) failed: smtp down\n {4}at /,
    );
    expect(error.stack).to.include('sendEmail');
    expect(error.job.fn).to.equal(failures.throwsSync);
    expect(error.job.state).to.equal('failed');
  });

  it('sends failures to onError(error, job, ctx) instead when given', async () => {
    const seen: Array<{ error: RaincheckJobError; job: Job; path: string }> = [];
    const { app, rc, errors } = appWith({
      onError: (error, job, ctx) => seen.push({ error, job, path: ctx.path }),
    });
    app.use(async (ctx) => {
      ctx.raincheck(failures.rejects);
      ctx.body = 'ok';
    });
    await request(app.callback()).get('/signup');
    await rc.onIdle();
    expect(errors).to.deep.equal([]);
    expect(seen).to.have.length(1);
    expect(seen[0]?.job.name).to.equal('writeAudit');
    expect(seen[0]?.path).to.equal('/signup');
    expect((seen[0]?.error.cause as Error | undefined)?.message).to.equal('db down');
  });

  it('contains an onError that throws or rejects, and still runs the other jobs', async () => {
    const warnings: string[] = [];
    const twoWarnings = deferred();
    const onWarning = (w: Error) => {
      warnings.push(w.message);
      if (warnings.length === 2) twoWarnings.resolve();
    };
    process.on('warning', onWarning);
    try {
      let calls = 0;
      const { app, rc } = appWith({
        runAsync: false,
        onError: () => {
          calls++;
          if (calls === 1) throw new Error('reporter broke');
          return Promise.reject(new Error('reporter rejected'));
        },
      });
      const ran: string[] = [];
      app.use(async (ctx) => {
        ctx.raincheck(failures.throwsSync);
        ctx.raincheck(failures.rejects);
        ctx.raincheck(() => ran.push('last'));
        ctx.body = 'ok';
      });
      await request(app.callback()).get('/').expect(200);
      await rc.onIdle();
      await twoWarnings.promise;
      expect(ran).to.deep.equal(['last']);
      expect(warnings).to.deep.equal([
        'koa-raincheck: onError threw: reporter broke',
        'koa-raincheck: onError threw: reporter rejected',
      ]);
    } finally {
      process.off('warning', onWarning);
    }
  });

  it("works with Koa's default error listener, which throws on non-Error values", async () => {
    const { app, rc } = appWith();
    app.removeAllListeners('error');
    app.silent = true; // keep the test output clean; Koa's onerror still runs its checks
    app.use(async (ctx) => {
      ctx.raincheck(failures.throwsNonError);
      ctx.body = 'ok';
    });
    const warnings: Error[] = [];
    const onWarning = (w: Error) => warnings.push(w);
    process.on('warning', onWarning);
    try {
      await request(app.callback()).get('/').expect(200);
      await rc.onIdle();
      await new Promise((resolve) => setImmediate(resolve));
    } finally {
      process.off('warning', onWarning);
    }
    expect(warnings).to.deep.equal([]); // Koa accepted it: it is a real Error
  });
});
