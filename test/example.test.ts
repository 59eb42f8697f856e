import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { expect } from 'chai';

describe('npm run example', () => {
  it('runs the signup example to the end and prints its timeline', async () => {
    const script = new URL('../example/signup.ts', import.meta.url).pathname;
    const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', script]);
    expect(stdout).to.include('deduped = [false, true]');
    expect(stdout).to.match(
      /error {3}koa-raincheck: job notifySlack\(\) failed: .* \(reported, server still up\)/,
    );
    expect(stdout).to.include('dropped writeAuditLog(): the response status was 400');
    expect(stdout.match(/job {5}sendWelcomeEmail\(\S+\) finished/g)).to.have.length(3);
    expect(stdout).to.include('All jobs settled; server closed.');
  });
});

describe('npm run example:durable', function () {
  this.timeout(60_000);
  for (const kind of ['bullmq', 'pg-boss']) {
    it(`hands the jobs to ${kind} after the responses, and its worker sends them`, async () => {
      const script = new URL('../example/durable.ts', import.meta.url).pathname;
      const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', script, kind]);
      expect(stdout.match(/worker {2}sent "welcome" to (\S+)/g)).to.deep.equal([
        'worker  sent "welcome" to ann@example.com',
        'worker  sent "welcome" to bob@example.com',
      ]);
      expect(stdout).to.match(/dropped \w+\(\): status 400/);
      expect(stdout).to.include('worker side done; servers closed.');
    });
  }
});
