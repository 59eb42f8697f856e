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
