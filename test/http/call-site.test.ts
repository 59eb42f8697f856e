import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { expect } from 'chai';
import Koa from 'koa';
import request from 'supertest';
import { type RaincheckJobError, raincheck, rainchecked } from '../../src/index.js';
import { appWith } from '../helpers.js';
import { scriptArgs } from '../runtime.js';

// Under tsx the frames name files by path (its source maps), as plain node names a CommonJS file; Deno
// names them by file URL.
const byUrl = String(new Error().stack).includes(import.meta.url);
const thisFile = byUrl ? import.meta.url : fileURLToPath(import.meta.url); // .../test/http/call-site.test.ts
const srcDir = byUrl
  ? new URL('../../src/', import.meta.url).href
  : fileURLToPath(new URL('../../src/', import.meta.url));

/** The line of the statement after the one that made `marker`. */
function nextLine(marker: Error): number {
  const stack = String(marker.stack);
  const at = stack.indexOf(`${thisFile}:`);
  return Number.parseInt(stack.slice(at + thisFile.length + 1), 10) + 1;
}

/** Fails after an `await`: its own stack has none of the handler's frames. */
async function sendReport(): Promise<void> {
  await Promise.resolve();
  throw new Error('smtp down');
}

/** One request to an app whose named handler schedules `sendReport`; resolves with the report and line. */
async function failingRequest(options: { callSite?: boolean }) {
  const { app, rc, errors, firstError } = appWith(options);
  let line = 0;
  app.use(async function signupHandler(ctx) {
    const marker = new Error();
    ctx.raincheck(sendReport);
    line = nextLine(marker);
    ctx.body = 'ok';
  });
  await request(app.callback()).get('/').expect(200);
  await firstError;
  await rc.onIdle();
  expect(errors).to.have.length(1);
  return { error: errors[0]?.error as RaincheckJobError, line };
}

describe('raincheck({ callSite })', () => {
  it("adds where a failing job was scheduled to its report: the handler's file and line", async () => {
    const { error, line } = await failingRequest({ callSite: true });
    const stack = String(error.stack);
    expect(stack).to.match(
      /^RaincheckJobError: koa-raincheck: job sendReport\(\) failed: smtp down\n {4}at /,
    );
    const [failedAt, scheduledAt] = stack.split('\nscheduled at:\n');
    expect(failedAt).to.match(/sendReport (\[as fn\] )?\(/); // Deno names the method it was called as
    expect(scheduledAt?.split('\n')[0]).to.equal(`    at signupHandler (${thisFile}:${line}:9)`);
    expect(scheduledAt, 'no frame of koa-raincheck').to.not.include(srcDir);
    expect(error.job.scheduledAt).to.equal(scheduledAt);
  });

  it('reports no call site when off (the default)', async () => {
    const { error, line } = await failingRequest({});
    expect(String(error.stack)).to.not.include('scheduled at:');
    expect(String(error.stack)).to.not.include('signupHandler');
    expect(String(error.stack)).to.not.include(`${thisFile}:${line}:`);
    expect(error.job.scheduledAt).to.equal(undefined);
  });

  it('leaves out the frames of schedule() and of a rainchecked wrapper too', async () => {
    const app = new Koa({ asyncLocalStorage: true });
    const reports: RaincheckJobError[] = [];
    app.on('error', (error: RaincheckJobError) => reports.push(error));
    const rc = raincheck({ callSite: true });
    app.use(rc);
    const report = rainchecked(sendReport);
    let line = 0;
    app.use(async function reportHandler(ctx) {
      const marker = new Error();
      report.schedule();
      line = nextLine(marker);
      ctx.body = 'ok';
    });
    await request(app.callback()).get('/').expect(200);
    await rc.onIdle();
    expect(reports).to.have.length(1);
    const scheduledAt = String(reports[0]?.job.scheduledAt);
    expect(scheduledAt.split('\n')[0]).to.equal(`    at reportHandler (${thisFile}:${line}:14)`);
    expect(scheduledAt).to.not.include(srcDir);
  });

  it('lets go of the call site of a job that succeeded, and keeps that of a failed one as text', async () => {
    const { app, rc, errors } = appWith({ callSite: true });
    const seen: Array<string | undefined> = [];
    const scheduled: Array<{ job: { scheduledAt: string | undefined; state: string } }> = [];
    app.use(async function handler(ctx) {
      scheduled.push(
        ctx.raincheck(function ok() {
          seen.push(scheduled[0]?.job.scheduledAt); // readable while it runs
        }),
        ctx.raincheck(sendReport),
      );
      ctx.body = 'ok';
    });
    await request(app.callback()).get('/').expect(200);
    await rc.onIdle();
    expect(seen[0]).to.match(/^ {4}at handler \(/);
    expect(scheduled.map(({ job }) => job.state)).to.deep.equal(['succeeded', 'failed']);
    expect(scheduled[0]?.job.scheduledAt).to.equal(undefined);
    expect(scheduled[1]?.job.scheduledAt).to.match(/^ {4}at handler \(/);
    expect(errors).to.have.length(1);
  });

  it('is on by default under NODE_DEBUG=koa-raincheck', async function () {
    this.timeout(30_000); // two child processes that load TypeScript
    const script = new URL('../fixtures/call-site-default.ts', import.meta.url).pathname;
    const run = (NODE_DEBUG: string) =>
      promisify(execFile)(process.execPath, scriptArgs(script, { typescript: true }), {
        env: { ...process.env, NODE_DEBUG },
      });
    expect(JSON.parse((await run('koa-raincheck')).stdout)).to.deep.equal([true, false]);
    expect(JSON.parse((await run('http')).stdout)).to.deep.equal([false, false]);
  });
});
