import { execFile } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'chai';

const run = promisify(execFile);
const fixture = (name: string) => new URL(`./fixtures/${name}`, import.meta.url).pathname;

// What users install is checked in test/tarball.test.ts (packed, installed, imported, required, type-checked)
// and test/consumers.test.ts (under Jest, Vitest and node --test).
describe('the koa-raincheck package', () => {
  it('builds on `prepare`, the one script npm runs when it packs a git dependency (not `prepack`)', async () => {
    const pkg = JSON.parse(await readFile(new URL('../package.json', import.meta.url), 'utf8'));
    expect(pkg.scripts.prepare).to.match(/\bnpm run build$/);
  });

  /** Each entry point and the file under dist/ (and dist/cjs/) it is built to. */
  const entries = {
    '.': 'index',
    './bullmq': 'adapters/bullmq',
    './pg-boss': 'adapters/pg-boss',
    './otel': 'otel',
  };

  it('exports each entry point to `import` as ESM and to `require()` as CommonJS, each with its declarations', async () => {
    const pkg = JSON.parse(await readFile(new URL('../package.json', import.meta.url), 'utf8'));
    for (const [entry, file] of Object.entries(entries)) {
      expect(pkg.exports[entry], entry).to.deep.equal({
        import: { types: `./dist/${file}.d.ts`, default: `./dist/${file}.js` },
        require: { types: `./dist/cjs/${file}.d.ts`, default: `./dist/cjs/${file}.js` },
      });
      // TypeScript's node10 resolution (`module: commonjs` before TypeScript 6) ignores `exports`.
      if (entry !== '.') {
        expect(pkg.typesVersions['*'][entry.slice(2)], entry).to.deep.equal([`./dist/cjs/${file}.d.ts`]);
      }
    }
    expect([pkg.main, pkg.types]).to.deep.equal(['./dist/cjs/index.js', './dist/cjs/index.d.ts']);
    const marker = JSON.parse(await readFile(new URL('../dist/cjs/package.json', import.meta.url), 'utf8'));
    expect(marker).to.deep.equal({ type: 'commonjs' });
  });

  it('gives `import` and `require()` one module instance: the ESM entry points re-export the CommonJS build', async () => {
    const require = createRequire(import.meta.url);
    for (const entry of Object.keys(entries)) {
      // A specifier in a variable keeps the type-checker on src/, not on a second copy from dist/.
      const name = `koa-raincheck${entry.slice(1)}`;
      const imported = await import(name);
      const required = require(name);
      expect(Object.keys(imported).sort(), name).to.deep.equal(Object.keys(required).sort());
      for (const key of Object.keys(required))
        expect(imported[key], `${name} ${key}`).to.equal(required[key]);
    }
    const main = 'koa-raincheck';
    const built = await import(main);
    expect(built.raincheck).to.be.a('function');
    expect(built.default).to.equal(built.raincheck);
  });

  it('exports each durable adapter on its own subpath, with no queue library loaded by the core', async () => {
    const pkg = JSON.parse(await readFile(new URL('../package.json', import.meta.url), 'utf8'));
    expect(pkg.peerDependenciesMeta).to.deep.equal({
      '@opentelemetry/api': { optional: true },
      bullmq: { optional: true },
      'pg-boss': { optional: true },
    });
    const [bullmqEntry, pgBossEntry] = ['koa-raincheck/bullmq', 'koa-raincheck/pg-boss'];
    expect((await import(bullmqEntry)).bullmq).to.be.a('function');
    expect((await import(pgBossEntry)).pgBoss).to.be.a('function');
    // Nothing built imports a queue library at run time: the adapters take the user's queue, types only.
    const dist = new URL('../dist/', import.meta.url);
    const files = (await readdir(dist, { recursive: true })).filter((f) => f.endsWith('.js'));
    expect(files).to.include.members(['index.js', path.join('cjs', 'index.js')]);
    for (const file of files) {
      const code = await readFile(new URL(file, dist), 'utf8');
      expect(code, file).to.not.match(/from ['"](bullmq|pg-boss)['"]|require\(['"](bullmq|pg-boss)['"]\)/);
      // The optional peer @opentelemetry/api is loaded by koa-raincheck/otel alone.
      if (path.basename(file) !== 'otel.js') expect(code, file).to.not.match(/['"]@opentelemetry\//);
    }
  });

  it('reports a dropped job under NODE_DEBUG=koa-raincheck by default, with its path and not its query string', async () => {
    const { stderr } = await run(process.execPath, [fixture('drop-debug.mjs')], {
      env: { ...process.env, NODE_DEBUG: 'koa-raincheck' },
    });
    expect(stderr).to.match(
      /KOA-RAINCHECK \d+: dropped job audit\(\) of GET \/signup: the response status was 404\n/,
    );
    // The path, never the query string: tokens and addresses travel there, and debug lines end up in logs.
    expect(stderr).to.not.include('secret');
    expect(stderr).to.not.include('example.com');
  });
});
