// The Koa switch: `RAINCHECK_KOA=2 npx mocha` runs the suite on Koa 2 (the devDependency `koa-2`, an npm
// alias) instead of the `koa` devDependency (Koa 3). Preloaded by .mocharc.json's node-option into mocha's
// process; when switched on it puts itself into NODE_OPTIONS, so that every Node process the tests start
// (test/fixtures/*.ts, the example and docs runs, the `node -e` of test/koa-version.test.ts) loads it too.
// In each, `koa` and `koa/...` imported or required from a file of this project resolve to `koa-2`:
// through a module resolve hook for `import` (test/koa-version-hooks.mjs), and `Module._resolveFilename`
// for `require()`. Unset, empty or `3`: nothing is changed. test/koa-version.test.ts checks which Koa
// loads, so that the switch cannot silently do nothing.
import Module, { createRequire, register } from 'node:module';
import { pathToFileURL } from 'node:url';
import { redirect } from './koa-version-hooks.mjs';

/** RAINCHECK_KOA's values and the package each one loads in place of `koa`. */
const packages = { 2: 'koa-2' };

const wanted = process.env.RAINCHECK_KOA ?? '';
if (wanted !== '' && wanted !== '3') {
  const target = packages[/** @type {keyof typeof packages} */ (wanted)];
  if (target === undefined)
    throw new Error(`Expected RAINCHECK_KOA to be 2 or 3 (or unset, for 3), got \`${wanted}\``);
  const rootURL = new URL('../', import.meta.url).href;
  try {
    createRequire(rootURL).resolve(`${target}/package.json`);
  } catch {
    throw new Error(`RAINCHECK_KOA=${wanted} loads the devDependency \`${target}\`: run \`npm install\``);
  }
  const switchTo = { rootURL, target };

  register('./koa-version-hooks.mjs', { parentURL: import.meta.url, data: switchTo });

  // require() in a CommonJS module (a .cjs doc block, `node -e`) does not go through module.register's hooks.
  /** @typedef {{ _resolveFilename(request: string, parent: unknown, ...rest: unknown[]): string }} Loader */
  const cjs = /** @type {Loader} */ (/** @type {unknown} */ (Module));
  const resolveFilename = cjs._resolveFilename;
  cjs._resolveFilename = function (request, parent, ...rest) {
    const filename = /** @type {{ filename?: unknown } | undefined} */ (parent)?.filename;
    const parentURL = typeof filename === 'string' ? pathToFileURL(filename).href : undefined;
    return resolveFilename.call(this, redirect(request, parentURL, switchTo), parent, ...rest);
  };

  // Inherited by every child process; a file URL has no spaces to quote.
  const self = `--import=${import.meta.url}`;
  const options = process.env.NODE_OPTIONS ?? '';
  if (!options.split(' ').includes(self)) process.env.NODE_OPTIONS = `${options} ${self}`.trim();
}
