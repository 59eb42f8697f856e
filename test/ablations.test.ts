// bench/ablations.ts counts builds with features taken out of the compiled code: its figures mean something
// only if each ablation applies to the build as it is, and the build with all of them still runs jobs.
import { execFile } from 'node:child_process';
import { rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { ablate, ablationNames, ablations } from '../bench/ablations.js';
import { scriptArgs } from './runtime.js';

const run = promisify(execFile);
const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
const dist = path.join(root, 'dist');
// Inside the repository, so that the copies find its node_modules (koa, object-hash).
const scratch = path.join(root, 'bench', 'results', 'ablations-test');

describe('bench/ablations.ts ablate()', () => {
  after(() => rmSync(scratch, { recursive: true, force: true }));

  for (const name of ablationNames) {
    it(`applies ${name} to the current build, which still runs each request's five distinct jobs`, async () => {
      const into = path.join(scratch, name);
      ablate(name, dist, into);
      const script = path.join(root, 'test', 'fixtures', 'ablated-app.mjs');
      const { stdout } = await run(process.execPath, scriptArgs(script), {
        env: { ...process.env, ABLATED_DIST: into },
      });
      const { bodies, ran } = JSON.parse(stdout) as { bodies: string[]; ran: string[] };
      expect(bodies).to.deep.equal(['ok', 'ok', 'ok']);
      expect([...ran].sort()).to.deep.equal(
        [0, 1, 2].flatMap((request) => [0, 1, 2, 3, 4].map((n) => `${request} event ${n}`)),
      );
    });
  }

  it('throws, naming the patch, when the compiled code no longer matches', () => {
    expect(ablations.drain?.patches[0]?.[0]).to.equal('request-queue.js');
    // A build whose request-queue.js lacks the line: made by applying `drain` to a copy twice.
    const once = path.join(scratch, 'drain-once');
    ablate('drain', dist, once);
    expect(() => ablate('drain', once, path.join(scratch, 'drain-twice'))).to.throw(
      /ablation drain: 0 matches in dist\/cjs\/request-queue\.js/,
    );
    expect(() => ablate('nothing', dist, path.join(scratch, 'nothing'))).to.throw(TypeError, /got `nothing`/);
  });
});
