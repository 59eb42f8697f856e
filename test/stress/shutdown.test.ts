import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { getAll, startChild } from '../child.js';

describe('rc.drain() on SIGTERM, in a real child process', function () {
  this.timeout(30_000);
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'raincheck-shutdown-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('loses none of 100 jobs in flight: the child exits 0 and all 100 lines are written', async () => {
    const linesFile = join(dir, 'lines');
    const server = await startChild('shutdown.ts', { LINES_FILE: linesFile, JOB_MS: '500' });
    await getAll(server.port, 100, (id) => `/job?id=${id}`);
    const code = await server.terminate(); // the jobs are still running: each takes 500 ms
    // Jobs already done when the signal came would prove nothing about the drain: check they were not.
    const atSigterm = JSON.parse(/^at SIGTERM (.*)$/m.exec(server.out())?.[1] ?? '{}');
    expect(atSigterm.running, 'jobs running at SIGTERM').to.be.greaterThan(0);
    expect(atSigterm.started - atSigterm.finished).to.equal(atSigterm.running);
    expect(code).to.equal(0);
    expect(server.out()).to.include('{"drained":true,"unfinished":[]}');
    const lines = readFileSync(linesFile, 'utf8').trim().split('\n').map(Number);
    expect(lines.sort((a, b) => a - b)).to.deep.equal(Array.from({ length: 100 }, (_, i) => i));
  });

  it('reports exactly the unfinished jobs when the drain timeout is shorter than they are', async () => {
    const linesFile = join(dir, 'lines');
    const server = await startChild('shutdown.ts', {
      LINES_FILE: linesFile,
      JOB_MS: '20',
      SLOW_FROM: '60',
      SLOW_MS: '5000',
      DRAIN_MS: '1000',
    });
    await getAll(server.port, 100, (id) => `/job?id=${id}`);
    const code = await server.terminate();
    expect(code).to.equal(1);
    const result = JSON.parse(
      server
        .out()
        .split('\n')
        .find((line) => line.startsWith('{')) ?? '{}',
    );
    expect(result.drained).to.equal(false);
    expect(result.unfinished.sort((a: number, b: number) => a - b)).to.deep.equal(
      Array.from({ length: 40 }, (_, i) => 60 + i),
    );
    const lines = readFileSync(linesFile, 'utf8').trim().split('\n').map(Number);
    expect(lines.sort((a, b) => a - b)).to.deep.equal(Array.from({ length: 60 }, (_, i) => i));
  });
});
