import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { majorsForThisNode } from './adapters/majors.js';
import { scriptArgs } from './runtime.js';
import { whenServer } from './servers.js';

describe('npm run example', () => {
  let stdout = '';
  before(async function () {
    this.timeout(60_000); // PGlite starts in seconds on a busy machine
    const script = new URL('../example/signup.ts', import.meta.url).pathname;
    ({ stdout } = await promisify(execFile)(process.execPath, scriptArgs(script, { typescript: true })));
  });

  it('runs the signup example to the end and prints its timeline', () => {
    expect(stdout).to.include('deduped = [false, true]');
    expect(stdout).to.match(
      /error {3}koa-raincheck: job notifySlack\(\) failed: .* \(reported, server still up\)/,
    );
    expect(stdout).to.include('dropped writeAuditLog(): the response status was 400');
    expect(stdout.match(/job {5}sendWelcomeEmail\(\S+\) finished/g)).to.have.length(3);
    expect(stdout).to.include('All jobs settled; servers closed.');
  });

  it("shows a committed transaction's job run and a rolled-back one's dropped, with no database server", () => {
    const part = stdout.slice(stdout.indexOf('Jobs that follow the database transaction'));
    expect(part).to.include('job     sendConfirmation(1) finished: order 1 is in the database');
    expect(part).to.include('client  got 200 {"ordered":1}');
    expect(part).to.match(/handler transaction rolled back \(.*violates check constraint "in_stock"\)/);
    expect(part).to.include('dropped sendConfirmation(2): rolledBack');
    expect(part).to.include('client  got 200 {"ordered":false}');
    expect(part).not.to.include('sendConfirmation(2) finished');
  });

  it('says what "sent" means, and what each of its four requests shows', () => {
    expect(stdout).to.include('jobs run after the response has been sent');
    expect(stdout).to.include('"Sent" means handed to the socket');
    const sections = stdout.split(/\n(?=\d\. )/).slice(1);
    expect(sections.map((section) => section.slice(0, 3))).to.deep.equal(['1. ', '2. ', '3. ', '4. ']);
    expect(sections[0]).to.match(/^1\. .*queued twice, runs once/);
    expect(sections[1]).to.match(/^2\. .*fails: reported on app 'error'/);
    expect(sections[2]).to.match(/^3\. .*400.*dropped/);
    expect(sections[3]).to.match(/^4\. .*still up/);
    // In each, the response is handed to the socket before any of its jobs ends or is dropped.
    for (const section of sections) {
      const lines = section.split('\n');
      const handedOver = lines.findIndex((line) => / server {2}response \d+ handed to the socket/.test(line));
      const jobs = lines.flatMap((line, i) => (/ (job {5}|dropped |error {3})/.test(line) ? [i] : []));
      expect(handedOver, section).to.be.greaterThan(0);
      expect(jobs, section).to.not.deep.equal([]);
      expect(Math.min(...jobs), section).to.be.greaterThan(handedOver);
    }
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
