// The runtimes other than Node that koa-raincheck is tested on, Bun and Deno, pinned like the Node versions
// (scripts/node-versions.mjs, whose installer this uses): each binary comes from the npm registry's platform
// package (`@oven/bun-<os>-<arch>`, `@deno/<os>-<arch>`), a plain tarball holding it, installed once into
// node_modules/.cache/koa-raincheck/<runtime>-<version>/ and reused. `npm run test:matrix` runs the whole
// mocha suite on each (rows `Bun 1.4.5` and `Deno 2.9.6`): the HTTP tests, the units, the stress tests, the
// adapters against their servers, and the README's quick start with the other doc blocks, which the docs
// test runs in a child of the runtime (test/runtime.ts says how each runtime is called).
//
// By hand:
//   node scripts/runtimes.mjs                      lists the pinned runtimes
//   node scripts/runtimes.mjs bun                  installs Bun 1.4.5 if needed and prints its binary's path
//   node scripts/test-matrix.mjs bun deno          the suite on each (test-matrix.mjs takes mocha options too)
//
// How the suite runs there (mochaCommand): mocha's own bin/mocha.js on the runtime, which runs the tests'
// TypeScript natively (Bun; Deno with --sloppy-imports, so that the tests' `.js` specifiers find the `.ts`
// files), with the options of .mocharc.json but its `node-option` (`import=tsx`, which makes mocha re-spawn
// itself with that Node flag), from a copy written beside the binaries. A copy rather than `--no-config`:
// Deno's `util.parseArgs` has no `allowNegative`, which mocha's CLI needs for any `--no-*` option.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { cacheDir, installOnce } from './node-versions.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const mocha = path.join(root, 'node_modules', 'mocha', 'bin', 'mocha.js');

/** glibc, or musl (Alpine): Bun has builds for both, Deno for glibc only. */
const musl =
  process.platform === 'linux' &&
  /** @type {{ header?: { glibcVersionRuntime?: string } }} */ (process.report?.getReport())?.header
    ?.glibcVersionRuntime === undefined;

/**
 * @typedef {object} Runtime
 * @property {'bun' | 'deno'} name
 * @property {string} label
 * @property {string} version the pinned version, exact
 * @property {string} pkg the registry package holding this platform's binary
 * @property {string} file the binary's path inside that package
 * @property {string[]} runArgs what goes before a script to run it with the tests' needs
 */

/** @type {Runtime[]} */
export const runtimes = [
  {
    name: 'bun',
    label: 'Bun',
    version: '1.4.5',
    pkg: `@oven/bun-${process.platform === 'win32' ? 'windows' : process.platform}-${
      process.arch === 'arm64' ? 'aarch64' : process.arch
    }${musl ? '-musl' : ''}`,
    file: path.join('bin', process.platform === 'win32' ? 'bun.exe' : 'bun'),
    runArgs: [],
  },
  {
    name: 'deno',
    label: 'Deno',
    version: '2.9.6',
    pkg: `@deno/${process.platform}-${process.arch}${process.platform === 'linux' ? (musl ? '-musl' : '-glibc') : ''}`,
    file: process.platform === 'win32' ? 'deno.exe' : 'deno',
    runArgs: ['run', '--allow-all', '--sloppy-imports'],
  },
];

/**
 * The pinned runtime `spec` names: `bun` or `deno`, with or without its version (`bun@1.4.5`); `undefined`
 * for anything else (a Node version, say).
 * @param {string} spec
 * @returns {Runtime | undefined}
 */
export function findRuntime(spec) {
  const [name, version] = spec.toLowerCase().split('@');
  const found = runtimes.find((r) => r.name === name);
  if (found !== undefined && version !== undefined && version !== found.version)
    throw new RangeError(`Expected ${found.label} ${found.version}, the pinned version, got \`${spec}\``);
  return found;
}

/**
 * The path of the runtime's pinned binary, installed from the registry on first use.
 * @param {Runtime} runtime
 * @returns {string}
 */
export function runtimeBinary(runtime) {
  return installOnce(
    `${runtime.pkg}@${runtime.version}`,
    path.join(cacheDir, `${runtime.name}-${runtime.version}`),
    (prefix) => {
      const file = path.join(prefix, 'node_modules', runtime.pkg, runtime.file);
      return existsSync(file) ? file : undefined;
    },
    `no ${runtime.label} ${runtime.version} for ${process.platform}-${process.arch}${musl ? ' (musl)' : ''}.`,
  );
}

/**
 * The command that runs the mocha suite on `runtime`, with `mochaArgs` added.
 * @param {Runtime} runtime
 * @param {string[]} mochaArgs
 * @returns {{ command: string, args: string[], env: Record<string, string> }}
 */
export function mochaCommand(runtime, mochaArgs) {
  return {
    command: runtimeBinary(runtime),
    args: [...runtime.runArgs, mocha, '--config', runtimeMocharc(), ...mochaArgs],
    // No update check, no prompt for a permission (--allow-all grants them all anyway).
    env: { DENO_NO_UPDATE_CHECK: '1', DENO_NO_PROMPT: '1' },
  };
}

/** .mocharc.json without `node-option`, written under `cacheDir`; its path. */
function runtimeMocharc() {
  const options = JSON.parse(readFileSync(path.join(root, '.mocharc.json'), 'utf8'));
  delete options['node-option'];
  const file = path.join(cacheDir, 'mocharc.runtimes.json');
  mkdirSync(cacheDir, { recursive: true });
  writeFileSync(file, `${JSON.stringify(options, null, 2)}\n`);
  return file;
}

const isMain =
  process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (isMain) {
  const args = process.argv.slice(2);
  try {
    if (args.length === 0) {
      for (const r of runtimes) console.log(`${r.name} ${r.version} (${r.pkg})`);
    } else {
      for (const arg of args) {
        const runtime = findRuntime(arg);
        if (runtime === undefined)
          throw new RangeError(`Expected one of ${runtimes.map((r) => r.name).join(', ')}, got \`${arg}\``);
        console.log(runtimeBinary(runtime));
      }
    }
  } catch (error) {
    console.error(`runtimes: ${/** @type {Error} */ (error).message}`);
    process.exit(1);
  }
}
