// The package as users get it, for the test files that install it into throwaway apps (test/tarball.test.ts,
// test/consumers.test.ts): `npm pack` (whose `prepare` builds it) once per mocha process, and npm run the way
// those apps need it.
import { execFile } from 'node:child_process';
import { rmSync } from 'node:fs';
import { access, mkdtemp, readdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

export const run = promisify(execFile);
export const root = fileURLToPath(new URL('..', import.meta.url));

// npm's engine and peer checks use the Node that runs npm: this one, first on PATH for npm's shebang.
export const env = {
  ...process.env,
  PATH: `${path.dirname(process.execPath)}${path.delimiter}${process.env.PATH}`,
};
export const npm = (cwd: string, args: string[]) =>
  run('npm', args, { cwd, env, maxBuffer: 64 * 1024 * 1024 });

/**
 * `npm install` into a throwaway app: `latest` and ranges as npm's cache knows them if it holds the package's
 * metadata (kept fast: the project's own devDependencies are there after `npm ci`), else the registry's.
 */
export const install = ['install', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=warn'];

/** The range this project's package.json gives a devDependency, for an app that installs the same. */
export async function devRange(name: string): Promise<string> {
  const manifest = JSON.parse(await readFile(path.join(root, 'package.json'), 'utf8'));
  const range = manifest.devDependencies?.[name];
  if (typeof range !== 'string') throw new Error(`package.json has no devDependency ${name}`);
  return `${name}@${range}`;
}

/** Every file under `dir`, relative to it, with `/` separators. */
export async function filesIn(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile())
    .map((e) => path.relative(dir, path.join(e.parentPath, e.name)).split(path.sep).join('/'));
}

export const exists = (file: string) =>
  access(file).then(
    () => true,
    () => false,
  );

let packed: Promise<string> | undefined;

/**
 * The path of the package's tarball, packed on the first call and shared by later ones (packing builds
 * dist/ anew: once is enough); removed when the process exits.
 */
export function packedTarball(): Promise<string> {
  packed ??= (async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'koa-raincheck-pack-'));
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
    await npm(root, ['pack', '--pack-destination', dir]);
    const tarball = (await readdir(dir)).find((f) => f.endsWith('.tgz'));
    if (tarball === undefined) throw new Error(`npm pack left no .tgz in ${dir}`);
    return path.join(dir, tarball);
  })();
  return packed;
}
