// `npm run build`: the package's dist/, with one implementation, in CommonJS, that `import` and `require()`
// both load, so that an app doing both gets one module instance (one `setOutsideRequest()` default, one
// tracing hook, one `Job` class for `instanceof`), never two copies side by side:
//
//   dist/cjs/**/*.js       src/**/*.ts as CommonJS, with source maps to src/: tsc (tsconfig.cjs.json), but
//                          for otel.ts, whose `import.meta.url` tsc refuses in CommonJS output: esbuild, with
//                          `import.meta.url` defined as the file's URL. (tsc rather than esbuild for the
//                          rest: esbuild reads every import through two getters, which cost ~8% of a
//                          request's instructions with ten jobs, bench S3; tsc's are plain properties.)
//                          dist/cjs/package.json says `"type": "commonjs"` (the package's own is `module`).
//   dist/**/*.d.ts         the declarations (tsc, tsconfig.build.json, which also type-checks src/), read as
//                          ESM here...
//   dist/cjs/**/*.d.ts     ...and a copy read as CommonJS, beside the CommonJS code it describes
//   dist/<entry>.js        for each entry point in package.json's `exports`, a small ESM file that imports
//                          the CommonJS module and re-exports its exports, by the names that module has
//
// Plain JavaScript (no tsx), like the other scripts, so that `prepare` runs it on any supported Node.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { transform } from 'esbuild';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const src = path.join(root, 'src');
const dist = path.join(root, 'dist');
const cjs = path.join(dist, 'cjs');

/** Every file under `dir` whose name ends with `suffix`, relative to it. */
const filesIn = (dir, suffix) =>
  readdirSync(dir, { recursive: true })
    .map(String)
    .filter((file) => file.endsWith(suffix));

/** A path relative to `from` (a directory), with `/` separators, as source maps and imports want it. */
const relative = (from, to) => path.relative(from, to).split(path.sep).join('/');

/** Writes `text` to `file`, making its directory first. */
function write(file, text) {
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, text);
}

// 1. Declarations, from tsc (tsconfig.build.json: declarations and their maps only), which type-checks src/
//    on the way: a type error fails the build, as it did when tsc emitted the code too. Then the CommonJS
//    code of every module but otel.ts (tsconfig.cjs.json).
const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
for (const config of ['tsconfig.build.json', 'tsconfig.cjs.json']) {
  execFileSync(process.execPath, [tsc, '-p', path.join(root, config)], { stdio: 'inherit' });
}

// 2. The modules tsconfig.cjs.json leaves out (otel.ts), by esbuild, with the compiler options that decide
//    what the code does (tsc's, from tsconfig.json).
const { compilerOptions } = JSON.parse(readFileSync(path.join(root, 'tsconfig.json'), 'utf8'));
const { exclude } = JSON.parse(readFileSync(path.join(root, 'tsconfig.cjs.json'), 'utf8'));
for (const file of exclude.map((excluded) => path.relative(src, path.join(root, excluded)))) {
  const out = path.join(cjs, file.replace(/\.ts$/, '.js'));
  const code = readFileSync(path.join(src, file), 'utf8');
  const result = await transform(code, {
    loader: 'ts',
    format: 'cjs',
    platform: 'node',
    target: compilerOptions.target,
    tsconfigRaw: {
      compilerOptions: {
        target: compilerOptions.target,
        useDefineForClassFields: true,
        verbatimModuleSyntax: compilerOptions.verbatimModuleSyntax,
      },
    },
    // ESM is strict mode; CommonJS is only with the directive, which esbuild does not add. `import.meta` does
    // not exist in CommonJS: `import.meta.url` becomes this file's URL.
    banner: "'use strict';\nconst __importMetaUrl = require('node:url').pathToFileURL(__filename).href;",
    define: { 'import.meta.url': '__importMetaUrl' },
    sourcemap: 'external',
    sourcefile: relative(path.dirname(out), path.join(src, file)),
    sourcesContent: false, // the package ships src/ itself
    logLevel: 'error',
  });
  const warnings = result.warnings.map((w) => `${file}: ${w.text}`);
  if (warnings.length > 0) throw new Error(`esbuild warned:\n${warnings.join('\n')}`);
  const map = JSON.parse(result.map);
  write(`${out}.map`, JSON.stringify({ ...map, file: path.basename(out) }));
  write(out, `${result.code}//# sourceMappingURL=${path.basename(out)}.map\n`);
}
// Every source has its CommonJS module: none left out of tsconfig.cjs.json but those esbuild made.
const sources = filesIn(src, '.ts').filter((file) => !file.endsWith('.d.ts'));
const missing = sources.filter((file) => !existsSync(path.join(cjs, file.replace(/\.ts$/, '.js'))));
if (missing.length > 0) throw new Error(`No CommonJS module built from ${missing.join(', ')}`);
write(path.join(cjs, 'package.json'), `${JSON.stringify({ type: 'commonjs' }, null, 2)}\n`);

// 3. The declarations again beside the CommonJS code, where its package.json makes TypeScript read them as
//    CommonJS (`export default` as `exports.default`, which is what the code sets); their maps still lead
//    to src/.
for (const file of filesIn(dist, '.d.ts').filter((f) => !f.startsWith(`cjs${path.sep}`))) {
  write(path.join(cjs, file), readFileSync(path.join(dist, file), 'utf8'));
  const map = JSON.parse(readFileSync(path.join(dist, `${file}.map`), 'utf8'));
  const from = path.dirname(path.join(dist, file));
  const sourcesFrom = (to) => relative(path.dirname(path.join(cjs, file)), path.resolve(from, to));
  write(path.join(cjs, `${file}.map`), JSON.stringify({ ...map, sources: map.sources.map(sourcesFrom) }));
}

// 4. The ESM entry points: each imports its CommonJS module (Node gives `module.exports` as the default
//    import) and re-exports what that module exports, by the names it has at run time, so they never drift.
const require = createRequire(import.meta.url);
const manifest = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));
for (const [entry, conditions] of Object.entries(manifest.exports)) {
  if (typeof conditions === 'string') continue; // ./package.json
  const esm = path.join(root, conditions.import.default);
  const commonjs = path.join(root, conditions.require.default);
  const names = Object.keys(require(commonjs)).sort();
  const invalid = names.filter((name) => !/^[A-Za-z_$][\w$]*$/.test(name));
  if (invalid.length > 0)
    throw new Error(`${entry} exports names ESM cannot re-export: ${invalid.join(', ')}`);
  const named = names.filter((name) => name !== 'default');
  const specifier = relative(path.dirname(esm), commonjs);
  const lines = [
    '// Generated by scripts/build.mjs: the ESM entry point over the one CommonJS implementation, so that',
    '// `import` and `require()` share its module instance. The default import of CommonJS is',
    "// `module.exports` on Node and Deno; Bun (and a bundler outside Node mode) gives the module's",
    '// `exports.default` when it is marked `__esModule`, as tsc marks it, and its named exports beside it.',
    `import * as ns from '${specifier.startsWith('.') ? specifier : `./${specifier}`}';`,
    '',
    'const cjs = ns.default?.__esModule === true ? ns.default : ns;',
    '',
    ...(named.length > 0 ? [`export const { ${named.join(', ')} } = cjs;`] : []),
    ...(names.includes('default') ? ['export default cjs.default;'] : []),
    '',
  ];
  write(esm, lines.join('\n'));
}
