// The packed package (test/packed.ts) under the test runners users run it with, each in a project of its own
// (the three share one install of the tarball): Jest 30 in a CommonJS project with its default configuration
// (Jest's module system require()s packages, and cannot load ES modules), Vitest in an ESM project, and
// `node --test` in an ESM project that also require()s the package (one module instance for both). Each
// serves real HTTP requests (supertest) whose jobs it awaits with the middleware's onIdle(). The projects'
// files are under test/fixtures/.consumers/ (a dot directory: the project's type-check skips it).
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { stripVTControlCharacters } from 'node:util';
import { expect } from 'chai';
import { devRange, env, install, npm, packedTarball, run } from './packed.js';
import { gatedOn, runtime } from './runtime.js';

const [major = 0, minor = 0] = process.versions.node.split('.').map(Number);
/**
 * Vitest 5 needs Node 22.12 or later; on Node 20, the newest Vitest that supports it: 4, this project's own
 * (which cannot be 5: Vitest 5's optional peer @types/node excludes the @types/node 20 it is typed with).
 */
const newestVitest = major > 22 || (major === 22 && minor >= 12);

type Name = 'jest' | 'vitest' | 'node-test';

/** What a project's run printed, whether it passed or not. */
interface Outcome {
  passed: boolean;
  output: string;
}

describe('the packed tarball under test runners, each in a project of its own', function () {
  this.timeout(60_000);
  let dir = '';
  const app = (name: Name) => path.join(dir, name);

  before(async function () {
    this.timeout(300_000);
    dir = await mkdtemp(path.join(tmpdir(), 'koa-raincheck-consumers-'));
    const tarball = await packedTarball();
    const vitest = newestVitest ? 'vitest@latest' : await devRange('vitest');
    const projects: Record<Name, { type?: 'module' }> = {
      jest: {}, // no "type": CommonJS
      vitest: { type: 'module' },
      'node-test': { type: 'module' },
    };
    for (const [name, { type }] of Object.entries(projects)) {
      await cp(fileURLToPath(new URL(`./fixtures/.consumers/${name}/`, import.meta.url)), app(name as Name), {
        recursive: true,
      });
      const manifest = { name: `consumer-${name}`, version: '1.0.0', private: true, ...(type && { type }) };
      await writeFile(path.join(app(name as Name), 'package.json'), JSON.stringify(manifest));
    }
    // One install that the three projects (its subdirectories) share, as in a monorepo: each still has its
    // own package.json and its runner's default configuration. Three installs took ~1.7 times as long.
    await writeFile(path.join(dir, 'package.json'), JSON.stringify({ name: 'consumers', private: true }));
    const deps = ['koa', 'supertest', '@opentelemetry/api', 'jest'].map(devRange);
    const started = performance.now();
    await npm(dir, [...install, tarball, ...(await Promise.all(deps)), vitest]);
    const took = Math.round(performance.now() - started);
    const versions = await Promise.all(
      ['jest', 'vitest'].map(async (runner) => {
        const manifest = path.join(dir, 'node_modules', runner, 'package.json');
        return `${runner} ${JSON.parse(await readFile(manifest, 'utf8')).version}`;
      }),
    );
    console.log(`      ${versions.join(', ')} installed in ${took} ms on Node ${process.versions.node}`);
  });

  after(async () => {
    if (dir !== '') await rm(dir, { recursive: true, force: true });
  });

  /** Runs `args` with this Node in project `name`; resolves with whether it exited 0, and all it printed. */
  async function runIn(name: Name, args: string[]): Promise<Outcome> {
    return run(process.execPath, args, { cwd: app(name), env, maxBuffer: 16 * 1024 * 1024 }).then(
      ({ stdout, stderr }) => ({ passed: true, output: stripVTControlCharacters(stdout + stderr) }),
      (error: { stdout?: string; stderr?: string; message: string }) => ({
        passed: false,
        output: stripVTControlCharacters(`${error.stdout ?? ''}${error.stderr ?? ''}` || error.message),
      }),
    );
  }

  const jest = (name: Name) => runIn(name, [path.join(dir, 'node_modules', 'jest', 'bin', 'jest.js')]);

  describe('Jest 30, CommonJS project, default configuration', () => {
    it('requires the package and every subpath, and runs the jobs of real requests after their responses', async () => {
      if (gatedOn(runtime === 'bun' ? 'bun' : 'deno', "Jest is Node's runner here: the Node rows run it"))
        return;
      const { passed, output } = await jest('jest');
      expect(passed, output).to.equal(true);
      expect(output).to.match(/^Tests: +3 passed, 3 total$/m);
    });

    it("fails with Jest's ESM error when `require` leads to the ESM entry points (the check above can fail)", async () => {
      if (gatedOn(runtime === 'bun' ? 'bun' : 'deno', "Jest is Node's runner here: the Node rows run it"))
        return;
      // The package as it was before its CommonJS build: every entry point ESM, for require() too. (The
      // install is the three projects': put back before the next test.)
      const file = path.join(dir, 'node_modules', 'koa-raincheck', 'package.json');
      const original = await readFile(file, 'utf8');
      const manifest = JSON.parse(original);
      for (const conditions of Object.values<{ import?: unknown; require?: unknown }>(manifest.exports)) {
        if (typeof conditions === 'object') conditions.require = conditions.import;
      }
      await writeFile(file, JSON.stringify(manifest));
      try {
        const { passed, output } = await jest('jest');
        expect(passed, output).to.equal(false);
        expect(output).to.include('Must use import to load ES Module');
      } finally {
        await writeFile(file, original);
      }
    });
  });

  describe(`Vitest ${newestVitest ? '(newest)' : '4 (the newest for Node 20)'}, ESM project, default configuration`, () => {
    it('imports the package and every subpath, and runs the jobs of real requests after their responses', async () => {
      const { passed, output } = await runIn('vitest', [
        path.join(dir, 'node_modules', 'vitest', 'vitest.mjs'),
        'run',
      ]);
      expect(passed, output).to.equal(true);
      expect(output).to.match(/^ +Tests +3 passed \(3\)$/m);
    });
  });

  describe('node --test, ESM project that also require()s the package', () => {
    it('gets one module instance: jobs scheduled through require() run by a middleware imported, one class each, one setOutsideRequest(), one tracing hook', async () => {
      if (gatedOn(runtime === 'bun' ? 'bun' : 'deno', "node --test is Node's runner: the Node rows run it"))
        return;
      const { passed, output } = await runIn('node-test', [
        '--test',
        '--test-reporter=tap',
        'one-instance.test.js',
      ]);
      expect(passed, output).to.equal(true);
      expect(output).to.match(/^# pass 5$/m);
      expect(output).to.match(/^# fail 0$/m);
    });
  });
});
