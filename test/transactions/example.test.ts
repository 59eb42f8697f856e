// example/transactions.ts, run on its own (npm run example calls it in its timeline once signup.ts does):
// PGlite, no server, a committed and a rolled-back transaction's jobs.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { expect } from 'chai';

describe('example/transactions.ts', function () {
  this.timeout(60_000); // PGlite starts in seconds on a busy machine
  it('runs the job of a committed transaction and drops the job of a rolled-back one, with no database server', async () => {
    const script = new URL('../../example/transactions.ts', import.meta.url).pathname;
    const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', script]);
    expect(stdout).to.include('job     sendConfirmation(1) finished: order 1 is in the database');
    expect(stdout).to.include('client  got 200 {"ordered":1}');
    expect(stdout).to.match(/handler transaction rolled back \(.*violates check constraint "in_stock"\)/);
    expect(stdout).to.include('dropped sendConfirmation(2): rolledBack');
    expect(stdout).to.include('client  got 200 {"ordered":false}');
    expect(stdout).not.to.include('sendConfirmation(2) finished');
    expect(stdout).to.include('All jobs settled; server closed.');
  });
});
