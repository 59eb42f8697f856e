// The package as users get it: `npm pack` (whose `prepare` builds it), installed into a throwaway app beside
// the newest koa (the newest koa 2 and @types/koa 2 under RAINCHECK_KOA=2) and, on Node 22+, the newest
// bullmq and pg-boss, then run from ESM and CommonJS and type-checked as a user's TypeScript project, with
// the project's TypeScript and the oldest one supported. test/consumers.test.ts runs it under test runners
// (Jest, Vitest, node --test).
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { exists, filesIn, install, npm, packedTarball, root, run } from './packed.js';

// A dot directory, so that the project's own type-check (`include: ["test"]`) skips it: there its imports of
// 'koa-raincheck' would load dist/, whose `declare module 'koa'` clashes with src/'s.
const fixtures = fileURLToPath(new URL('./fixtures/.consumer/', import.meta.url));
/** pg-boss 11 and 12 need Node 22+; on Node 20 the app has koa alone (the adapters must type without them). */
const withQueues = Number(process.versions.node.split('.')[0]) >= 22;
/** The koa major the suite runs on (test/koa-version.mjs): the app installs its newest release and types. */
const koa = process.env.RAINCHECK_KOA === '2' ? '2' : 'latest';
/** The oldest TypeScript the declarations support: `NoInfer` came in 5.4. */
const oldestTypeScript = '5.4';

describe('the packed tarball, installed in a new app', function () {
  this.timeout(60_000);
  let dir = '';
  let app = '';
  let pkg = '';
  let installLog = '';

  before(async function () {
    this.timeout(300_000);
    dir = await mkdtemp(path.join(tmpdir(), 'koa-raincheck-tarball-'));
    const tarball = await packedTarball();
    app = path.join(dir, 'app');
    await cp(fixtures, app, { recursive: true });
    const manifest = { name: 'consumer', version: '1.0.0', private: true, type: 'module' };
    await writeFile(path.join(app, 'package.json'), JSON.stringify(manifest));
    const queues = withQueues ? ['bullmq@latest', 'ioredis@latest', 'pg-boss@latest'] : [];
    const deps = [tarball, `koa@${koa}`, `@types/koa@${koa}`, '@opentelemetry/api@latest', ...queues];
    const { stdout, stderr } = await npm(app, [...install, ...deps, `typescript@${oldestTypeScript}`]);
    installLog = stdout + stderr;
    pkg = path.join(app, 'node_modules', 'koa-raincheck');
  });

  after(async () => {
    if (dir !== '') await rm(dir, { recursive: true, force: true });
  });

  it(`installs beside the newest koa${koa === 'latest' ? '' : ` ${koa}`} (and bullmq and pg-boss on Node 22+) with no peer warning`, async () => {
    const peerLines = installLog.split('\n').filter((line) => /ERESOLVE|\bpeer/i.test(line));
    expect(peerLines).to.deep.equal([]);
    const names = [
      'koa',
      '@types/koa',
      '@opentelemetry/api',
      ...(withQueues ? ['bullmq', 'ioredis', 'pg-boss'] : []),
    ];
    const versions = await Promise.all(
      names.map(async (name) => {
        const manifest = JSON.parse(
          await readFile(path.join(app, 'node_modules', name, 'package.json'), 'utf8'),
        );
        return `${name} ${manifest.version}`;
      }),
    );
    const without = withQueues ? '' : ' (no bullmq or pg-boss: pg-boss 11 and 12 need Node 22+)';
    console.log(`      beside ${versions.join(', ')} on Node ${process.versions.node}${without}`);
  });

  it('ships the build of the current sources, those sources, and nothing else', async () => {
    const files = await filesIn(pkg);
    const top = [...new Set(files.map((f) => f.split('/')[0]))].sort();
    const changelog = (await exists(path.join(root, 'CHANGELOG.md'))) ? ['CHANGELOG.md'] : [];
    expect(top).to.deep.equal([
      ...changelog,
      'LICENSE',
      'README.md',
      'bench',
      'dist',
      'docs',
      'package.json',
      'src',
    ]);
    // The docs the README links to, and the benchmark's figures the performance page links to; no bench code.
    expect(files.filter((f) => f.startsWith('bench/'))).to.deep.equal(['bench/RESULTS.md']);
    expect(files).to.include.members(['docs/semantics.md', 'docs/faq.md', 'docs/comparison.md']);
    const manifest = JSON.parse(await readFile(path.join(pkg, 'package.json'), 'utf8'));
    /** The files an `exports` value leads to, under every condition. */
    const targets = (value: unknown): string[] =>
      typeof value === 'string' ? [value] : Object.values(value ?? {}).flatMap(targets);
    for (const file of [...targets(manifest.exports), ...targets(manifest.typesVersions)]) {
      expect(files, `exports or typesVersions target ${file}`).to.include(path.posix.normalize(file));
    }
    // No output left over from a source file since renamed or removed (`prepare` empties dist/ first): the
    // CommonJS code and declarations under dist/cjs/, the ESM entry points and declarations under dist/.
    const sources = new Set(files.filter((f) => f.startsWith('src/')));
    for (const built of files.filter((f) => f.startsWith('dist/') && /\.(js|d\.ts)$/.test(f))) {
      expect(sources, `${built}'s source`).to.include(
        built.replace(/^dist\/(cjs\/)?/, 'src/').replace(/(\.d)?\.ts$|\.js$/, '.ts'),
      );
    }
  });

  it("ships each source map's sources, and each map its code points to", async () => {
    const files = await filesIn(pkg);
    const maps = files.filter((f) => f.endsWith('.map'));
    for (const map of maps) {
      const { sources, sourceRoot = '' } = JSON.parse(await readFile(path.join(pkg, map), 'utf8'));
      for (const source of sources as string[]) {
        const shipped = path.posix.join(path.posix.dirname(map), sourceRoot, source);
        expect(files, `${map} points to ${source}`).to.include(shipped);
      }
    }
    for (const code of files.filter((f) => /\.(js|d\.ts)$/.test(f))) {
      const url = /\/\/# sourceMappingURL=(\S+)\s*$/.exec(await readFile(path.join(pkg, code), 'utf8'))?.[1];
      if (url !== undefined) expect(files, code).to.include(path.posix.join(path.posix.dirname(code), url));
    }
  });

  it("has adapters whose declarations import neither bullmq nor pg-boss (the user's install decides)", async () => {
    const declarations = (await filesIn(pkg)).filter((f) => f.endsWith('.d.ts'));
    for (const file of declarations) {
      const text = await readFile(path.join(pkg, file), 'utf8');
      expect(text, file).to.not.match(/(from|import\(|require\()\s*['"](bullmq|pg-boss)['"/]/);
    }
  });

  it('imports every entry point from ESM, and serves a request with the installed koa', async () => {
    const { stdout } = await run(process.execPath, ['esm.mjs'], { cwd: app });
    expect(stdout).to.equal('ok');
  });

  it('requires every entry point from CommonJS (`const { raincheck } = require(...)`)', async () => {
    const { stdout } = await run(process.execPath, ['require.cjs'], { cwd: app });
    expect(stdout).to.equal('ok');
  });

  /** Runs `tsc` (a TypeScript's launcher) on `files` of the app with these options; resolves with its output. */
  async function typeCheck(tsc: string, files: string[], compilerOptions: object): Promise<string> {
    const config = path.join(app, 'tsconfig.check.json');
    await writeFile(config, JSON.stringify({ extends: './tsconfig.json', compilerOptions, files }));
    const checked = await run(process.execPath, [tsc, '-p', config], { cwd: app }).catch(
      (error: { stdout?: string; message: string }) => ({ stdout: error.stdout || error.message }),
    );
    return checked.stdout;
  }

  for (const [moduleResolution, module] of [
    ['nodenext', 'nodenext'],
    ['bundler', 'preserve'],
  ] as const) {
    it(`type-checks a user's code under moduleResolution ${moduleResolution} with the project's TypeScript`, async () => {
      const tsc = path.join(root, 'node_modules/typescript/bin/tsc');
      // A CommonJS file's require() and `import x = require()`: only nodenext tells them from ESM imports.
      const cjs = moduleResolution === 'nodenext' ? ['require.cts'] : [];
      // Library checks on: this package's declarations must check cleanly, whatever the user's settings.
      const own = { module, moduleResolution, skipLibCheck: false };
      expect(await typeCheck(tsc, ['app.ts', 'adapters.ts', ...cjs], own), 'tsc output').to.equal('');
      if (withQueues) {
        // Off for the real queue libraries: pg-boss 12.38's declarations need @types/pg, which it does not
        // depend on, and import a type its own types.d.ts does not export.
        const theirs = { module, moduleResolution, skipLibCheck: true };
        expect(await typeCheck(tsc, ['queues.ts'], theirs), 'tsc output').to.equal('');
      }
    });

    it(`type-checks a user's code under moduleResolution ${moduleResolution} with TypeScript ${oldestTypeScript}`, async () => {
      const tsc = path.join(app, 'node_modules/typescript/bin/tsc');
      // The newest @types/node (which @types/koa brings) needs TypeScript 5.6 to check its own files: with an
      // older one, users skip library checks, and the expect-error lines still prove this package's types.
      const options = { module, moduleResolution, skipLibCheck: true };
      const cjs = moduleResolution === 'nodenext' ? ['require.cts'] : [];
      expect(await typeCheck(tsc, ['app.ts', 'adapters.ts', ...cjs], options), 'tsc output').to.equal('');
    });
  }

  it(`type-checks a CommonJS user's code under moduleResolution node10 with TypeScript ${oldestTypeScript}`, async () => {
    // `module: commonjs` without a moduleResolution means node10 before TypeScript 6, which ignores `exports`:
    // `main` and `types` give the package, `typesVersions` its subpaths. (TypeScript 7 has no node10.)
    const tsc = path.join(app, 'node_modules/typescript/bin/tsc');
    const options = {
      module: 'commonjs',
      moduleResolution: 'node10',
      esModuleInterop: true,
      skipLibCheck: true,
    };
    const files = ['app.ts', 'adapters.ts', 'require.cts'];
    expect(await typeCheck(tsc, files, options), 'tsc output').to.equal('');
  });
});
