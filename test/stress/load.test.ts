import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { scriptArgs } from '../runtime.js';

describe('raincheck({ concurrency: 50 }) under load, in a real child process', function () {
  this.timeout(60_000);

  it('runs every one of 5,000 jobs exactly once, never more than 50 at once, and gives its heap back', async () => {
    const script = new URL('../fixtures/load.ts', import.meta.url).pathname;
    const { stdout } = await promisify(execFile)(
      process.execPath,
      scriptArgs(script, { typescript: true, exposeGc: true }),
    );
    const result = JSON.parse(stdout);
    console.log(
      `      5,000 requests in ${result.seconds.toFixed(1)} s; jobs run ${result.jobsRun}, peak concurrency ` +
        `${result.peak}, heap after GC ${(result.heapBefore / 2 ** 20).toFixed(2)} MB → ` +
        `${(result.heapAfter / 2 ** 20).toFixed(2)} MB`,
    );
    expect(result).to.include({
      requests: 5000,
      ok: 5000,
      jobsRun: 5000,
      ranTwice: 0,
      missing: 0,
      unhandled: 0,
    });
    expect(result.peak).to.be.at.most(50);
    expect(result.peak).to.equal(50); // the bound was reached, so the test says something
    expect(result.heapAfter / result.heapBefore).to.be.below(1.1);
    expect(result.stats).to.deep.include({
      running: 0,
      waiting: 0,
      awaitingResponse: 0,
      failed: 0,
      dropped: 0,
    });
  });
});
