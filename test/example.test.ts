import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { majorsForThisNode } from './adapters/majors.js';
import { scriptArgs } from './runtime.js';
import { whenServer } from './servers.js';

describe('npm run example', () => {
  it('runs the signup example to the end and prints its timeline', async () => {
    const script = new URL('../example/signup.ts', import.meta.url).pathname;
    const { stdout } = await promisify(execFile)(process.execPath, scriptArgs(script, { typescript: true }));
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
  const itRuns = (kind: 'bullmq' | 'pg-boss') =>
    it(`hands the jobs to ${kind} after the responses, and its worker sends them`, async () => {
      const script = new URL('../example/durable.ts', import.meta.url).pathname;
      const { stdout } = await promisify(execFile)(process.execPath, [
        ...scriptArgs(script, { typescript: true }),
        kind,
      ]);
      // Sorted: two hand-offs under way at once may reach the queue in either order.
      expect(stdout.match(/worker {2}sent "welcome" to (\S+)/g)?.sort()).to.deep.equal([
        'worker  sent "welcome" to ann@example.com',
        'worker  sent "welcome" to bob@example.com',
      ]);
      expect(stdout).to.match(/dropped \w+\(\): status 400/);
      expect(stdout).to.include('worker side done; servers closed.');
    });
  whenServer('redis', 'the npm run example:durable test', () => itRuns('bullmq'));
  // The example imports pg-boss 12, which needs a newer Node than the library does.
  const pgBoss12 = { label: 'npm run example:durable -- pg-boss, on pg-boss 12', module: 'pg-boss' };
  if (majorsForThisNode([pgBoss12]).length > 0) {
    whenServer('postgres', 'the npm run example:durable -- pg-boss test', () => itRuns('pg-boss'));
  }
});
