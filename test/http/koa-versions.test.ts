// Koa before 2.14 has no `asyncLocalStorage` option (it ignores it), so scheduling without ctx cannot find
// the request: once raincheck() has served such an app, schedule() and .schedule() that find no request
// throw an error that says so, even with { outside: 'run' } (a request cannot be told from no request);
// ctx.raincheck() works as on any Koa. The app runs in a child process (test/fixtures/koa-2-13.ts): serving
// it changes scheduling without ctx for its whole process. The suite itself runs on Koa 2.16 under
// RAINCHECK_KOA=2 (test/koa-version.mjs).
import { expect } from 'chai';
import request from 'supertest';
import { type ChildServer, startChild } from '../child.js';

describe('on koa 2.13 (no asyncLocalStorage option), over real HTTP', function () {
  this.timeout(20_000);
  let server: ChildServer;
  let url = '';
  let stopped = false;

  before(async function () {
    this.timeout(30_000);
    server = await startChild('koa-2-13.ts', {});
    url = `http://127.0.0.1:${server.port}`;
  });

  after(async () => {
    if (!stopped) await server.terminate();
  });

  const tooOld = {
    name: 'RaincheckOutsideRequestError',
    reason: 'koa-before-2.14',
  };

  it('is served by koa 2.13.4, whose app has no currentContext', () => {
    expect(server.out()).to.include('koa 2.13.4 currentContext false\n');
    // Before the app served a request, nothing was known of it: { outside: 'run' } ran the job at once.
    expect(server.out()).to.include(
      'job before ran, response finished: undefined\nbefore any request: scheduled\n',
    );
  });

  it('answers schedule() in a handler with an error that asks for Koa 2.14 or ctx.raincheck()', async () => {
    const { text } = await request(url).get('/schedule').expect(200);
    const thrown = JSON.parse(text);
    expect(thrown).to.include(tooOld);
    expect(thrown.message).to.equal(
      'koa-raincheck: job() was scheduled without ctx, which needs Koa 2.14 or later: raincheck() has served ' +
        'an app of an older Koa, which has no asyncLocalStorage option, so the request being handled cannot be ' +
        "found, nor told from no request ({ outside: 'run' } does not run the call at once either). Use " +
        'ctx.raincheck(job, ...args) there, or upgrade Koa and create the app with new Koa({ asyncLocalStorage: true }).',
    );
  });

  it("throws the same with { outside: 'run' } and setOutsideRequest('run'): the job never runs at once", async () => {
    const { text } = await request(url).get('/schedule-run').expect(200);
    expect(JSON.parse(text)).to.include(tooOld);
    // A job scheduled next through ctx.raincheck() prints once its response is over: a job run at once, or
    // scheduled on the request after all, would have printed by then.
    await request(url).get('/ctx?name=next').expect(200, 'ok');
    await server.printed('job next ran');
    expect(server.out()).to.not.include('job schedule-run ran');
    expect(server.out()).to.not.include('job schedule ran');
  });

  it('runs ctx.raincheck() jobs after the response, as on any Koa', async () => {
    await request(url).get('/ctx?name=welcome').expect(200, 'ok');
    await server.printed('job welcome ran');
    expect(server.out()).to.include('job welcome ran, response finished: true\n');
  });

  it('throws outside any request too, once the app has served one, whatever `outside` says', async () => {
    stopped = true;
    const exited = server.terminate();
    expect(await exited).to.equal(0);
    const after = /^after: (.*)$/m.exec(server.out())?.[1];
    expect(after, server.out()).to.be.a('string');
    expect(JSON.parse(after as string)).to.include(tooOld);
    expect(server.out()).to.not.include('job after ran');
  });
});
