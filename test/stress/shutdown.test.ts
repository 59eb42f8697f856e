import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';

/** Starts test/fixtures/shutdown.ts in a child process with `env`; resolves with it and its port. */
async function startChild(
  env: Record<string, string>,
): Promise<{ child: ChildProcess; port: number; out: () => string }> {
  const script = new URL('../fixtures/shutdown.ts', import.meta.url).pathname;
  const child = spawn(process.execPath, ['--import', 'tsx', script], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout?.setEncoding('utf8');
  const port = await new Promise<number>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`child exited early with ${code}`)));
    child.stdout?.on('data', (chunk: string) => {
      out += chunk;
      const match = /listening (\d+)/.exec(out);
      if (match) resolve(Number(match[1]));
    });
  });
  return { child, port, out: () => out };
}

/** 100 requests, each scheduling one job; resolves when every response is in. */
async function schedule100(port: number): Promise<void> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 20 });
  await Promise.all(
    Array.from(
      { length: 100 },
      (_, id) =>
        new Promise<void>((resolve, reject) => {
          http
            .get({ port, host: '127.0.0.1', path: `/job?id=${id}`, agent }, (res) => {
              res.resume();
              res.on('end', () =>
                res.statusCode === 200 ? resolve() : reject(new Error(`${res.statusCode}`)),
              );
            })
            .on('error', reject);
        }),
    ),
  );
  agent.destroy();
}

describe('rc.drain() on SIGTERM, in a real child process', function () {
  this.timeout(30_000);
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'raincheck-shutdown-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('loses none of 100 jobs in flight: the child exits 0 and all 100 lines are written', async () => {
    const linesFile = join(dir, 'lines');
    const { child, port, out } = await startChild({ LINES_FILE: linesFile, JOB_MS: '200' });
    await schedule100(port);
    child.kill('SIGTERM'); // the jobs are still running: each takes 200 ms
    const [code] = await once(child, 'exit');
    expect(code).to.equal(0);
    expect(out()).to.include('{"drained":true,"unfinished":[]}');
    const lines = readFileSync(linesFile, 'utf8').trim().split('\n').map(Number);
    expect(lines.sort((a, b) => a - b)).to.deep.equal(Array.from({ length: 100 }, (_, i) => i));
  });

  it('reports exactly the unfinished jobs when the drain timeout is shorter than they are', async () => {
    const linesFile = join(dir, 'lines');
    const { child, port, out } = await startChild({
      LINES_FILE: linesFile,
      JOB_MS: '20',
      SLOW_FROM: '60',
      SLOW_MS: '5000',
      DRAIN_MS: '1000',
    });
    await schedule100(port);
    child.kill('SIGTERM');
    const [code] = await once(child, 'exit');
    expect(code).to.equal(1);
    const result = JSON.parse(
      out()
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
