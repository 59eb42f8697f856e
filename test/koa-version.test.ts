// The Koa switch (test/koa-version.mjs) must never silently do nothing: this checks which Koa `import` and
// `require()` load, here and in a child process, against RAINCHECK_KOA.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { expect } from 'chai';
import Koa from 'koa';
import { scriptArgs } from './runtime.js';

const run = promisify(execFile);
const root = fileURLToPath(new URL('..', import.meta.url));
const switched = process.env.RAINCHECK_KOA === '2';
const expectedMajor = switched ? '2' : '3';
const major = (version: string) => version.split('.')[0];

/** Prints the version of the Koa that `koa` loads in a new `node` process started in `cwd`. */
async function versionInChild(cwd: string, type: 'commonjs' | 'module'): Promise<string> {
  const code =
    type === 'commonjs'
      ? "process.stdout.write(require('koa/package.json').version)"
      : "import { createRequire } from 'node:module'; import Koa from 'koa'; " +
        "const require = createRequire(import.meta.url); if (Koa !== require('koa')) throw new Error('two Koas'); " +
        "process.stdout.write(require('koa/package.json').version)";
  // A file rather than `-e`: Deno's CLI has no `--input-type`. In `cwd`, so that `koa` resolves from there.
  const file = path.join(cwd, `.koa-version-${process.pid}.${type === 'module' ? 'mjs' : 'cjs'}`);
  await writeFile(file, code);
  try {
    const { stdout } = await run(process.execPath, scriptArgs(file), { cwd });
    return stdout;
  } finally {
    await rm(file, { force: true });
  }
}

describe(`the Koa the tests run on (RAINCHECK_KOA ${process.env.RAINCHECK_KOA ? `= ${process.env.RAINCHECK_KOA}` : 'unset'})`, () => {
  it(`is Koa ${expectedMajor} for import and require(), here and in the processes the tests start`, async () => {
    const require = createRequire(import.meta.url);
    const installedAs = path.join(root, 'node_modules', switched ? 'koa-2' : 'koa');
    // A path, which the switch does not redirect.
    const { version } = JSON.parse(await readFile(path.join(installedAs, 'package.json'), 'utf8'));
    expect(major(version), `koa ${version} in ${installedAs}`).to.equal(expectedMajor);
    expect(Koa, `the Koa imported is the one in ${installedAs}`).to.equal(require(installedAs));
    expect(require('koa'), 'the same class through import and require()').to.equal(Koa);
    expect(require('koa/package.json').version).to.equal(version);
    // Koa 2.14+ and 3 alike: the getter the library looks for (see src/ambient.ts).
    expect('currentContext' in new Koa()).to.equal(true);
    expect(await versionInChild(root, 'commonjs'), 'require() in a child').to.equal(version);
    expect(await versionInChild(root, 'module'), 'import in a child').to.equal(version);
    const fixture = fileURLToPath(new URL('./fixtures/koa-version.ts', import.meta.url));
    const { stdout } = await run(process.execPath, ['--import', 'tsx', fixture]);
    expect(stdout, 'import in a test/fixtures/*.ts child').to.equal(version);
    console.log(`      koa ${version} on Node ${process.versions.node}`);
  });

  if (switched) {
    it('leaves alone code outside this project (the tarball test’s app has its own koa)', async () => {
      const outside = await mkdtemp(path.join(tmpdir(), 'koa-raincheck-outside-'));
      try {
        const code =
          "try { process.stdout.write(require.resolve('koa')) } catch (e) { process.stdout.write(e.code) }";
        const { stdout } = await run(process.execPath, ['-e', code], { cwd: outside });
        expect(stdout).to.not.include(`${path.sep}koa-2${path.sep}`);
        expect(process.env.NODE_OPTIONS, 'the switch, inherited by child processes').to.include(
          'koa-version.mjs',
        );
      } finally {
        await rm(outside, { recursive: true, force: true });
      }
    });
  }
});
