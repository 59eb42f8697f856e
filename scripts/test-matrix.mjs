// `npm run test:matrix`: the mocha suite on each pinned Node version (scripts/node-versions.mjs), on Koa 2
// (the devDependency `koa-2`, through RAINCHECK_KOA=2: see test/koa-version.mjs) on the primary one, then on
// Bun and on Deno (scripts/runtimes.mjs), one after the other (the tests start servers and child processes;
// two cores do not take two suites at once). The build, type-check and lint are not repeated: `npm test` did
// them (`typecheck:koa2` too), and ran the suite on the running Node and Koa 3, which is left out here.
//
//   node scripts/test-matrix.mjs                  every pinned Node version but the running one, the primary
//                                                 one on Koa 2, Bun, Deno
//   node scripts/test-matrix.mjs --only 24,bun    those, on Koa 3 (also `node scripts/test-matrix.mjs 24 bun`)
//   node scripts/test-matrix.mjs --koa 2          the primary version on Koa 2 (`npm run test:koa2`)
//   node scripts/test-matrix.mjs 22 --koa 2       the versions named, on Koa 2
//   node scripts/test-matrix.mjs 24 -- --grep key mocha options after `--`
//
// Each Node version's bin dir goes first on PATH, so that the tests' child processes (`node`, npm's
// `#!/usr/bin/env node`) run that version too; on Bun and Deno the tests start their children with the
// runtime's own binary (test/runtime.ts), and npm with the machine's Node. Ends with
// `matrix: N passed, N failed`, summed over the rows; exits non-zero if any row failed.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { nodeBinary, primary, resolveVersion, versions } from './node-versions.mjs';
import { findRuntime, mochaCommand, runtimes } from './runtimes.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const mocha = path.join(root, 'node_modules', 'mocha', 'bin', 'mocha.js');

/**
 * The Koa majors the suite runs on: the `koa` devDependency, and the one test/koa-version.mjs loads in its
 * place for RAINCHECK_KOA=2. `version` is the installed one, e.g. `2.16.4`.
 * @type {Record<'2' | '3', { env: string, version: string }>}
 */
const koas = {
  3: { env: '', version: installedVersion('koa') },
  2: { env: '2', version: installedVersion('koa-2') },
};

/** @param {string} name @returns {string} */
function installedVersion(name) {
  try {
    return JSON.parse(readFileSync(path.join(root, 'node_modules', name, 'package.json'), 'utf8')).version;
  } catch {
    return '(not installed: run `npm install`)';
  }
}

/**
 * The Node versions (each with its Koa major) and the runtimes named (when none is: every Node version but
 * the running one on Koa 3, the primary one on Koa 2, and every runtime), and mocha's options.
 * @returns {{ chosen: { version: string, koa: '2' | '3' }[], chosenRuntimes: import('./runtimes.mjs').Runtime[], mochaArgs: string[] }}
 */
function parseArgs(argv) {
  const dash = argv.indexOf('--');
  const own = dash === -1 ? argv : argv.slice(0, dash);
  const mochaArgs = dash === -1 ? [] : argv.slice(dash + 1);
  const specs = [];
  /** @type {'2' | '3' | undefined} */
  let koa;
  for (let i = 0; i < own.length; i++) {
    const arg = /** @type {string} */ (own[i]);
    const koaValue =
      arg === '--koa' ? own[++i] : arg.startsWith('--koa=') ? arg.slice('--koa='.length) : null;
    if (koaValue !== null) {
      if (koaValue !== '2' && koaValue !== '3')
        throw new TypeError(`Expected 2 or 3 after \`--koa\`, got \`${koaValue ?? '(nothing)'}\``);
      koa = koaValue;
    } else if (arg === '--only') {
      const value = own[++i];
      if (value === undefined) throw new TypeError('Expected versions after `--only`, e.g. `--only 24,26`');
      specs.push(...value.split(','));
    } else if (arg.startsWith('--only=')) specs.push(...arg.slice('--only='.length).split(','));
    else if (arg.startsWith('-')) throw new TypeError(`Unknown option \`${arg}\` (mocha's go after \`--\`)`);
    else specs.push(...arg.split(','));
  }
  const named = specs.filter(Boolean);
  const chosenRuntimes =
    named.length > 0 || koa !== undefined
      ? [...new Set(named.map(findRuntime).filter((r) => r !== undefined))]
      : runtimes;
  const namedVersions = [
    ...new Set(named.filter((spec) => findRuntime(spec) === undefined).map(resolveVersion)),
  ];
  /** @type {{ version: string, koa: '2' | '3' }[]} */
  const chosen =
    namedVersions.length > 0
      ? namedVersions.map((version) => ({ version, koa: koa ?? '3' }))
      : named.length > 0
        ? []
        : koa !== undefined
          ? [{ version: primary, koa }]
          : [
              ...versions
                .filter((v) => `v${v}` !== process.version)
                .map((version) => ({ version, koa: /** @type {const} */ ('3') })),
              { version: primary, koa: /** @type {const} */ ('2') },
            ];
  return { chosen, chosenRuntimes, mochaArgs };
}

/**
 * A version's suite that has not ended by then is killed and counts as failed: a test that leaves a
 * server or a timer behind keeps mocha alive, and CI would otherwise wait for its own time limit.
 */
const TIMEOUT_SECONDS = Number(process.env.MATRIX_TIMEOUT ?? 600);

/**
 * Runs `command` (mocha on a Node version or a runtime, `label`), passing its output through, and reads its
 * closing counts.
 * @param {string} label
 * @param {string} command
 * @param {string[]} args
 * @param {Record<string, string>} extraEnv
 * @returns {Promise<{ passing: number, failing: number, code: number | null, seconds: number, timedOut: boolean, failures: string }>}
 */
function runSuite(label, command, args, extraEnv) {
  const started = performance.now();
  const env = { ...process.env, ...extraEnv };
  // npm run sets these to the running Node's; a child npm would otherwise take them over.
  delete env.npm_node_execpath;
  delete env.NODE;
  // In a process group of its own, so that a timeout ends mocha's re-spawned runner and its servers too.
  const child = spawn(command, args, {
    cwd: root,
    env,
    stdio: ['ignore', 'pipe', 'inherit'],
    detached: process.platform !== 'win32',
  });
  const killGroup = (signal) => {
    try {
      if (process.platform === 'win32') child.kill(signal);
      else process.kill(-(/** @type {number} */ (child.pid)), signal);
    } catch {
      // already gone
    }
  };
  // Detached, it no longer gets the terminal's Ctrl-C: pass it on.
  const onSignal = (signal) => {
    killGroup(signal);
    process.exit(130);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    console.error(`test-matrix: ${label}: mocha still running after ${TIMEOUT_SECONDS} s, killed`);
    killGroup('SIGTERM');
    setTimeout(() => killGroup('SIGKILL'), 5000).unref();
  }, TIMEOUT_SECONDS * 1000);
  let output = '';
  child.stdout.on('data', (chunk) => {
    process.stdout.write(chunk);
    output += chunk.toString('utf8');
  });
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      // biome-ignore lint/suspicious/noControlCharactersInRegex: strips colour codes.
      const text = output.replace(/\x1b\[[0-9;]*m/g, '');
      // The last such line: mocha's summary comes after every test.
      const count = (word) => {
        const all = [...text.matchAll(new RegExp(`^\\s*(\\d+) ${word}\\b`, 'gm'))];
        return Number(all.at(-1)?.[1] ?? 0);
      };
      // Mocha's failure report (after its closing counts), repeated under the table: a CI log that keeps only
      // its tail still names what failed and where.
      const report = [...text.matchAll(/^\s*\d+ failing\b/gm)].at(-1);
      const failures =
        report === undefined ? '' : text.slice(report.index).trim().split('\n').slice(0, 60).join('\n');
      resolve({
        passing: count('passing'),
        failing: count('failing'),
        failures,
        code,
        seconds: (performance.now() - started) / 1000,
        timedOut,
      });
    });
  });
}

const formatTime = (seconds) =>
  seconds < 60 ? `${seconds.toFixed(0)} s` : `${Math.floor(seconds / 60)} min ${(seconds % 60).toFixed(0)} s`;

let parsed;
try {
  parsed = parseArgs(process.argv.slice(2));
} catch (error) {
  console.error(`test-matrix: ${/** @type {Error} */ (error).message}`);
  process.exit(2);
}
const { chosen, chosenRuntimes, mochaArgs } = parsed;

/**
 * What a row runs: the mocha suite on a pinned Node version (its bin dir first on PATH), or on a runtime.
 * @typedef {{ id: string, label: string, prepare: () => { command: string, args: string[], env: Record<string, string> } }} Target
 * @type {Target[]}
 */
const targets = [
  ...chosen.map(({ version, koa }) => ({
    id: `node ${version} koa ${koa}`,
    label: `Node ${version}${version === primary ? ' (primary)' : ''}, koa ${koas[koa].version}`,
    prepare: () => {
      const node = nodeBinary(version);
      const PATH = `${path.dirname(node)}${path.delimiter}${process.env.PATH ?? ''}`;
      return { command: node, args: [mocha, ...mochaArgs], env: { PATH, RAINCHECK_KOA: koas[koa].env } };
    },
  })),
  ...chosenRuntimes.map((runtime) => ({
    id: `${runtime.name} ${runtime.version}`,
    label: `${runtime.label} ${runtime.version}`,
    prepare: () => mochaCommand(runtime, mochaArgs),
  })),
];

const started = performance.now();
/** @type {{ id: string, passing: number, failing: number, seconds: number, note: string, failures?: string }[]} */
const rows = [];
for (const { id, label, prepare } of targets) {
  console.log(`\n=== ${label}: mocha ===`);
  let prepared;
  const installStarted = performance.now();
  try {
    prepared = prepare();
  } catch (error) {
    console.error(`test-matrix: ${/** @type {Error} */ (error).message}`);
    rows.push({ id, passing: 0, failing: 1, seconds: 0, note: 'no binary' });
    continue;
  }
  // Not counted in the suite's time; only a first run installs (a few seconds each).
  const installSeconds = (performance.now() - installStarted) / 1000;
  const result = await runSuite(label, prepared.command, prepared.args, prepared.env);
  // A crash before mocha's summary (a syntax error, an unhandled rejection) or a run that never ended
  // counts as one failure.
  const crashed = (result.code !== 0 || result.timedOut) && result.failing === 0;
  rows.push({
    id,
    passing: result.passing,
    failing: crashed ? 1 : result.failing,
    seconds: result.seconds,
    failures: result.failures,
    note: result.timedOut
      ? `killed after ${TIMEOUT_SECONDS} s (MATRIX_TIMEOUT)`
      : crashed
        ? `exit ${result.code ?? 'by signal'}, no mocha summary`
        : installSeconds >= 1
          ? `(binary installed first: ${formatTime(installSeconds)})`
          : '',
  });
}

for (const { id, failures } of rows)
  if (failures) console.log(`\n=== what failed on ${id} (mocha's report, at most 60 lines) ===\n${failures}`);

console.log('\n=== test matrix ===');
const table = [['runtime', 'koa', 'passing', 'failing', 'time', '']];
const allRows = [
  ...versions.map((v) => ({
    id: `node ${v} koa 3`,
    name: `node ${v}${v === primary ? '*' : ''}`,
    koa: koas[3].version,
    running: `v${v}` === process.version,
  })),
  ...versions
    .filter((v) => v === primary || chosen.some((run) => run.version === v && run.koa === '2'))
    .map((v) => ({
      id: `node ${v} koa 2`,
      name: `node ${v}${v === primary ? '*' : ''}`,
      koa: koas[2].version,
      running: false,
    })),
  ...runtimes.map((r) => ({
    id: `${r.name} ${r.version}`,
    name: `${r.name} ${r.version}`,
    koa: koas[3].version,
    running: false,
  })),
];
for (const { id, name, koa, running } of allRows) {
  const r = rows.find((row) => row.id === id);
  if (r) table.push([name, koa, String(r.passing), String(r.failing), formatTime(r.seconds), r.note]);
  else table.push([name, koa, '-', '-', '-', running ? 'the running Node: `npm test` ran it' : 'not chosen']);
}
const widths = table[0].map((_, col) => Math.max(...table.map((row) => row[col].length)));
for (const row of table)
  console.log(
    row
      .map((cell, col) => cell.padEnd(widths[col]))
      .join('  ')
      .trimEnd(),
  );
console.log(`(* the primary version)  ${formatTime((performance.now() - started) / 1000)} in all`);

const passed = rows.reduce((sum, r) => sum + r.passing, 0);
const failed = rows.reduce((sum, r) => sum + r.failing, 0);
console.log(`matrix: ${passed} passed, ${failed} failed`);
process.exitCode = failed > 0 || rows.length === 0 ? 1 : 0;
