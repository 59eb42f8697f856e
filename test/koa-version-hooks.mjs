// The module resolve hook of the Koa switch (test/koa-version.mjs registers it with `module.register`, and
// uses `redirect` for CommonJS too): `koa` and `koa/...`, imported from a file of this project, resolve to
// the package installed under another name, e.g. `koa-2`. Files outside the project (the throwaway app of
// test/tarball.test.ts, with its own koa) are left alone.

/**
 * The specifier `specifier` stands for when imported from `parentURL`: `target` in place of `koa` if the
 * importer is under `rootURL`, else `specifier` itself.
 * @param {string} specifier
 * @param {string | undefined} parentURL
 * @param {{ readonly rootURL: string, readonly target: string }} switchTo
 * @returns {string}
 */
export function redirect(specifier, parentURL, { rootURL, target }) {
  if (specifier !== 'koa' && !specifier.startsWith('koa/')) return specifier;
  if (parentURL === undefined || !parentURL.startsWith(rootURL)) return specifier;
  return `${target}${specifier.slice('koa'.length)}`;
}

/** @type {{ rootURL: string, target: string } | undefined} */
let switchTo;

/** @param {{ rootURL: string, target: string }} data */
export function initialize(data) {
  switchTo = data;
}

/**
 * @param {string} specifier
 * @param {{ parentURL?: string }} context
 * @param {(specifier: string, context: object) => unknown} nextResolve
 */
export function resolve(specifier, context, nextResolve) {
  if (switchTo === undefined) return nextResolve(specifier, context);
  return nextResolve(redirect(specifier, context.parentURL, switchTo), context);
}
