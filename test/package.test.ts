import { execFile } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { expect } from 'chai';

const run = promisify(execFile);
const fixture = (name: string) => new URL(`./fixtures/${name}`, import.meta.url).pathname;

// What users install is checked in test/tarball.test.ts (packed, installed, imported, required, type-checked).
describe('the koa-raincheck package', () => {
  it('builds on `prepare`, the one script npm runs when it packs a git dependency (not `prepack`)', async () => {
    const pkg = JSON.parse(await readFile(new URL('../package.json', import.meta.url), 'utf8'));
    expect(pkg.scripts.prepare).to.match(/\bnpm run build$/);
  });

  it('exports the built ESM entry with its types', async () => {
    const pkg = JSON.parse(await readFile(new URL('../package.json', import.meta.url), 'utf8'));
    expect(pkg.exports['.']).to.deep.equal({ types: './dist/index.d.ts', default: './dist/index.js' });
    // A specifier in a variable keeps the type-checker on src/, not on a second copy from dist/.
    const name = 'koa-raincheck';
    const built = await import(name);
    expect(built.raincheck).to.be.a('function');
    expect(built.default).to.equal(built.raincheck);
  });

  it('exports each durable adapter on its own subpath, with no queue library loaded by the core', async () => {
    const pkg = JSON.parse(await readFile(new URL('../package.json', import.meta.url), 'utf8'));
    expect(pkg.exports['./bullmq']).to.deep.equal({
      types: './dist/adapters/bullmq.d.ts',
      default: './dist/adapters/bullmq.js',
    });
    expect(pkg.exports['./pg-boss']).to.deep.equal({
      types: './dist/adapters/pg-boss.d.ts',
      default: './dist/adapters/pg-boss.js',
    });
    expect(pkg.exports['./otel']).to.deep.equal({ types: './dist/otel.d.ts', default: './dist/otel.js' });
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
    for (const file of files) {
      const code = await readFile(new URL(file, dist), 'utf8');
      expect(code, file).to.not.match(/from ['"](bullmq|pg-boss)['"]|require\(['"](bullmq|pg-boss)['"]\)/);
      // The optional peer @opentelemetry/api is loaded by koa-raincheck/otel alone.
      if (file !== 'otel.js') expect(code, file).to.not.match(/['"]@opentelemetry\//);
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
