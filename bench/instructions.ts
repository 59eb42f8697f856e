// Instructions per request, counted by callgrind: what the hot path's targets are judged on. CPU time on a
// shared 2-core machine moves by 5-8% from run to run; these counts repeat to within about 0.3%.
//
//   npx tsx bench/instructions.ts                       every scenario, on this machine's Node and on Node 24
//   npx tsx bench/instructions.ts --only S2 --node 24   S2 and its baseline (bare Koa) on Node 24: ~45 s
//   npx tsx bench/instructions.ts --profile --only S3   also where the extra instructions go, by function
//
// Flags (defaults): --only S1,S2,S3,S2K,S3K,S6,S8 (all; each brings its baseline, S0 or S0A; BENCH_ONLY too),
// --node current,24 (pinned versions or majors, or `current`; BENCH_NODES too), --reps 1 (servers per
// scenario; the median is reported), --parallel 2 (servers at once), --warmup 20000, --requests 2000,
// --windows 5, --tolerance 0.005, --no-floors (each of S1-S3, S2K, S3K, S6 otherwise brings its floor F…),
// --dist DIR (a build other than dist/), --baselines-from FILE (take S0 and S0A from an earlier run's JSON
// instead of counting them again), --json FILE
// (bench/results/instructions.json, which bench/RESULTS.md is made from, for a run with no flag;
// instructions.partial.json beside it for any other), --node-flags / --valgrind-flags "..." (experiments only).
//
// Each server is bench/server.mjs on the built dist/, run by plain node with the real JIT, under
// `valgrind --tool=callgrind --instr-atstart=no --smc-check=all-non-file --separate-threads=yes`. Nothing is
// counted while it starts and serves the warm-up requests (one keep-alive connection, one request at a
// time, from a small client in this process); then `callgrind_control -i on` and windows of 2,000 requests,
// each dumped (`callgrind_control --dump`) once the server is idle, until two windows in a row agree within
// 0.5%. The figure is the last window's total over every thread (so JIT compilation and GC count) divided by
// its requests. Why 20,000 warm-up requests and windows: V8 tiers code up by how often it runs, and on Node
// 24 a server is not in its steady state before ~20,000 requests (windows of 2,000 read 121 k at 6,000,
// 382 k at 10,000 (a burst of TurboFan compiling), 77-88 k up to 18,000, then 72.4 k from 20,000 on);
// Node 20 settles by 10,000. Needs valgrind (Debian/Ubuntu: `apt-get install valgrind`) and Linux (/proc).
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import {
  createWriteStream,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const benchDir = path.dirname(fileURLToPath(import.meta.url));

/** The scenarios counted, each with the baseline its ratio is taken against (bare ÷ variant). */
export const instructionScenarios = {
  S0: { title: 'bare Koa', baseline: undefined },
  S1: { title: 'S1 mounted, no job', baseline: 'S0' },
  S2: { title: 'S2 one job', baseline: 'S0' },
  S3: { title: 'S3 ten calls, five dup', baseline: 'S0' },
  S2K: { title: 'S2, `keepContext: false`', baseline: 'S0' },
  S3K: { title: 'S3, `keepContext: false`', baseline: 'S0' },
  S0A: { title: 'bare Koa with ALS', baseline: undefined },
  S6: { title: 'S6 `schedule()`, ALS', baseline: 'S0A' },
  // One request at a time here, so jobs seldom overlap: what coalescing costs a job that joins nothing.
  S8: { title: 'S8 `.coalesce()`', baseline: 'S0' },
  // The floor (bench/floor.mjs): the cheapest correct middleware with the core semantics, same handlers.
  F1: { title: 'floor S1', baseline: 'S0' },
  F2: { title: 'floor S2', baseline: 'S0' },
  F3: { title: 'floor S3', baseline: 'S0' },
  F2K: { title: 'floor S2K', baseline: 'S0' },
  F3K: { title: 'floor S3K', baseline: 'S0' },
  F6: { title: 'floor S6', baseline: 'S0A' },
} as const satisfies Record<string, { title: string; baseline: string | undefined }>;
export type InstructionScenario = keyof typeof instructionScenarios;
const isBaseline = (name: InstructionScenario) => instructionScenarios[name].baseline === undefined;
const allScenarios = Object.keys(instructionScenarios) as InstructionScenario[];

/** Each library scenario's floor: the same handler with bench/floor.mjs instead of the library. */
export const floors = { S1: 'F1', S2: 'F2', S3: 'F3', S2K: 'F2K', S3K: 'F3K', S6: 'F6' } as const;
/** Issue 23's target: the library's ratio within this of its floor's. */
export const FLOOR_MARGIN = 0.01;

/** The targets of issue 11, by instruction ratio, on every Node measured. */
export const instructionTargets: Partial<Record<InstructionScenario, number>> = {
  S1: 0.98,
  S2: 0.95,
  S3: 0.9,
  S2K: 0.95,
  S3K: 0.9,
  S6: 0.93,
};

export interface InstructionOptions {
  /** Variants to count; their baselines are added. Default: all. */
  scenarios?: readonly InstructionScenario[];
  /** Pinned versions or majors (`24`), or `current` for the Node running this. Default: current and 24. */
  nodes?: readonly string[];
  warmup?: number;
  requests?: number;
  /** Servers counted per scenario and Node; the median is reported. */
  reps?: number;
  /** Servers under valgrind at once (each takes a core's worth of CPU). */
  parallel?: number;
  /** Also name the functions the instructions go to (slower: `--perf-basic-prof`, files kept). */
  profile?: boolean;
  /** Another build of the library than dist/ (a directory holding its index.js): see BENCH_DIST. */
  dist?: string | undefined;
  /** Most counted windows per server, until two in a row agree within `tolerance`. */
  windows?: number;
  tolerance?: number;
  /** Baselines (bare Koa) counted earlier, taken from these results instead of counted again. */
  baselinesFrom?: InstructionResults | undefined;
  /** Extra node flags, for experiments (the figures of record use none but the ones here). */
  nodeFlags?: readonly string[];
  valgrindFlags?: readonly string[];
  /** Progress lines go here. */
  log?: (line: string) => void;
  /** Leave out the floor scenarios that `scenarios` would bring (`--no-floors`). */
  withoutFloors?: boolean;
}

export interface ScenarioCount {
  /** Median instructions per request over the servers counted. */
  perRequest: number;
  /** Each server's instructions per request. */
  runs: number[];
  /** (max - min) / median of `runs`. */
  spread: number;
  /** Each server's counted windows (instructions per request); its figure is its last. */
  windows: number[][];
  /** With `profile`: self instructions per request by function, over every thread (median server). */
  functions?: Record<string, number>;
  /** With `profile`: inclusive instructions per request of calls into named code, as `caller -> callee`. */
  calls?: Record<string, number>;
}

export interface NodeCounts {
  version: string;
  binary: string;
  scenarios: Partial<Record<InstructionScenario, ScenarioCount>>;
  /** baseline ÷ variant, for each variant counted with its baseline. */
  ratios: Partial<Record<InstructionScenario, number>>;
  /** Servers that could not be counted (after one retry each). */
  errors: string[];
}

export interface InstructionResults {
  warmup: number;
  requests: number;
  reps: number;
  nodes: NodeCounts[];
}

/** Why instructions cannot be counted here, or `undefined` when they can. */
export async function instructionsUnavailable(): Promise<string | undefined> {
  try {
    await run('valgrind', ['--version']);
    await run('callgrind_control', ['--version']);
    return undefined;
  } catch {
    return 'valgrind is not installed (Debian/Ubuntu: apt-get install valgrind)';
  }
}

/** The node binary of a spec: `current`, or a pinned version through scripts/node-versions.mjs. */
async function nodeBinaryOf(spec: string): Promise<string> {
  if (spec === 'current') return process.execPath;
  const url = new URL('../scripts/node-versions.mjs', import.meta.url).href;
  const versions = (await import(url)) as { nodeBinary(spec: string): string };
  return versions.nodeBinary(spec);
}

export async function measureInstructions(options: InstructionOptions = {}): Promise<InstructionResults> {
  const warmup = options.warmup ?? 20_000;
  const requests = options.requests ?? 2000;
  const reps = options.reps ?? 1;
  const parallel = options.parallel ?? 2;
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const wanted = new Set<InstructionScenario>();
  for (const name of options.scenarios ?? allScenarios) {
    const { baseline } = instructionScenarios[name];
    if (baseline !== undefined) wanted.add(baseline);
    wanted.add(name);
    const floorOf = floors[name as keyof typeof floors];
    if (floorOf !== undefined && !options.withoutFloors) wanted.add(floorOf); // read against its floor
  }
  const scenarios = allScenarios.filter((name) => wanted.has(name));

  // `current` and a pinned spec naming the same binary are counted once.
  const binaries = new Map<string, string>();
  for (const spec of options.nodes ?? ['current', '24']) binaries.set(await nodeBinaryOf(spec), spec);
  const nodes: NodeCounts[] = [];
  const tasks: Array<() => Promise<void>> = [];
  for (const binary of binaries.keys()) {
    const { stdout } = await run(binary, ['--version']);
    const version = stdout.trim().replace(/^v/, '');
    const counts: NodeCounts = { version, binary, scenarios: {}, ratios: {}, errors: [] };
    nodes.push(counts);
    const runs = new Map<InstructionScenario, Count[]>();
    for (const scenario of scenarios) {
      // A baseline (bare Koa does not run the library) may come from an earlier run on the same Node.
      const earlier = options.baselinesFrom?.nodes.find((node) => node.version === version)?.scenarios[
        scenario
      ];
      if (earlier !== undefined && !options.scenarios?.includes(scenario) && isBaseline(scenario)) {
        counts.scenarios[scenario] = earlier;
        log(
          `  Node ${version} ${scenario}: ${(earlier.perRequest / 1000).toFixed(2)} k, from the earlier run`,
        );
        continue;
      }
      runs.set(scenario, []);
      for (let rep = 0; rep < reps; rep++) {
        tasks.push(async () => {
          const settings = {
            warmup,
            requests,
            profile: !!options.profile,
            dist: options.dist,
            nodeFlags: options.nodeFlags ?? [],
            valgrindFlags: options.valgrindFlags ?? [],
            windows: options.windows ?? 5,
            tolerance: options.tolerance ?? 0.005,
          };
          let count: Count;
          try {
            count = await countServer(binary, scenario, settings);
          } catch (first) {
            // A server under valgrind on a busy machine can fail for reasons of its own: one more try.
            log(`  Node ${version} ${scenario}: ${(first as Error).message.split('\n')[0]}; once more`);
            try {
              count = await countServer(binary, scenario, settings);
            } catch (error) {
              counts.errors.push(`${scenario}: ${(error as Error).message}`);
              log(`  Node ${version} ${scenario} FAILED: ${(error as Error).message}`);
              return;
            }
          }
          const done = runs.get(scenario) as Count[];
          done.push(count);
          log(
            `  Node ${counts.version} ${scenario}: ${(count.perRequest / 1000).toFixed(2)} k instructions/request` +
              ` (windows ${count.windows.map((w) => (w / 1000).toFixed(2)).join(', ')};` +
              ` ${count.threads} threads; ${count.seconds.toFixed(0)} s: ${JSON.stringify(count.phases)})`,
          );
          if (done.length === reps) counts.scenarios[scenario] = summarise(done);
        });
      }
    }
  }
  log(`Counting instructions: ${tasks.length} servers under callgrind, ${parallel} at a time`);
  await pool(tasks, parallel);
  for (const counts of nodes) {
    for (const scenario of scenarios) {
      const { baseline } = instructionScenarios[scenario];
      const variant = counts.scenarios[scenario];
      const base = baseline === undefined ? undefined : counts.scenarios[baseline];
      if (variant !== undefined && base !== undefined)
        counts.ratios[scenario] = base.perRequest / variant.perRequest;
    }
  }
  return { warmup, requests, reps, nodes };
}

interface Count {
  /** The last window's instructions per request. */
  perRequest: number;
  /** Each window's, in order. */
  windows: number[];
  threads: number;
  seconds: number;
  /** Seconds spent starting, warming up and counting. */
  phases: Record<string, number>;
  functions: Record<string, number> | undefined;
  calls: Record<string, number> | undefined;
}

function summarise(counts: Count[]): ScenarioCount {
  const sorted = [...counts].sort((a, b) => a.perRequest - b.perRequest);
  const middle = sorted[Math.floor((sorted.length - 1) / 2)] as Count;
  const upper = sorted[Math.floor(sorted.length / 2)] as Count;
  const median = (middle.perRequest + upper.perRequest) / 2; // of an even count, the mean of the middle two
  const runs = counts.map((count) => count.perRequest);
  const spread = (Math.max(...runs) - Math.min(...runs)) / median;
  return {
    perRequest: median,
    runs,
    spread,
    windows: counts.map((count) => count.windows),
    ...(middle.functions === undefined ? {} : { functions: middle.functions }),
    ...(middle.calls === undefined ? {} : { calls: middle.calls }),
  };
}

async function pool(tasks: Array<() => Promise<void>>, size: number): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < tasks.length) await (tasks[next++] as () => Promise<void>)();
  };
  await Promise.all(Array.from({ length: Math.min(size, tasks.length) }, worker));
}

/** Starts one server under callgrind, warms it up, counts `requests` requests, and stops it. */
async function countServer(
  node: string,
  scenario: InstructionScenario,
  settings: {
    warmup: number;
    requests: number;
    profile: boolean;
    dist: string | undefined;
    nodeFlags: readonly string[];
    valgrindFlags: readonly string[];
    windows: number;
    tolerance: number;
  },
): Promise<Count> {
  const { warmup, requests, profile, dist } = settings;
  const started = performance.now();
  const dir = mkdtempSync(path.join(os.tmpdir(), `raincheck-callgrind-${scenario}-`));
  const valgrind = [
    '--tool=callgrind',
    '--instr-atstart=no', // nothing counted until `callgrind_control -i on`
    '--smc-check=all-non-file', // V8 writes and rewrites machine code: valgrind must see the new code
    '--separate-threads=yes', // one file per thread, all of them summed
    '--trace-children=no',
    `--callgrind-out-file=${dir}/callgrind.out.%p`,
    ...(profile ? ['--dump-instr=no'] : []),
    ...settings.valgrindFlags,
  ];
  // The real JIT: no --jitless nor any flag of the compilers. One GC flag: V8 grows the young generation
  // by allocation throughput over wall time, and natively a loaded server's semi-space reaches 16 MB within
  // seconds (Node 20 and 24 alike), while under valgrind, ~50 times slower, it stays smaller and grows as
  // the machine's load allows: S0 on Node 24 read 102.9 k idle and 105-110 k beside three busy loops, from
  // more scavenges. Starting at 16 MB counts the native steady state, load or not (101.6 k / 102.3 k).
  // --perf-basic-prof only to name JIT code when profiling.
  const nodeArgs = [
    '--expose-gc',
    '--min-semi-space-size=16',
    ...(profile ? ['--perf-basic-prof'] : []),
    ...settings.nodeFlags,
  ];
  const server = path.join(benchDir, 'server.mjs');
  const child = spawn('valgrind', [...valgrind, node, ...nodeArgs, server, scenario], {
    stdio: ['ignore', profile ? 'pipe' : 'ignore', 'pipe', 'ipc'],
    env: dist === undefined ? process.env : { ...process.env, BENCH_DIST: path.resolve(dist) },
  });
  if (profile) child.stdout?.pipe(createWriteStream(path.join(dir, 'stdout.txt')));
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk;
  });
  try {
    const port = await ready(child, () => stderr);
    const client = await connect(port);
    const windows: number[] = [];
    let files: string[] = [];
    const phases: Record<string, number> = {};
    let mark = started;
    const phase = (name: string) => {
      phases[name] = Math.round((performance.now() - mark) / 100) / 10;
      mark = performance.now();
    };
    phase('start');
    try {
      await client.get(warmup);
      await quiet(child.pid as number);
      phase('warmup');
      await control(child, ['-i', 'on']);
      // Windows of `requests` requests, each dumped on its own once the server is idle (so that the work
      // they leave to other threads counts in them), until two in a row agree.
      for (let n = 1; n <= settings.windows; n++) {
        await client.get(requests);
        await quiet(child.pid as number);
        await control(child, [`--dump=window ${n}`]);
        files = readdirSync(dir).filter((file) => file.startsWith(`callgrind.out.${child.pid}.${n}-`));
        let total = 0;
        for (const file of files) total += totalOf(readFileSync(path.join(dir, file), 'utf8'));
        if (total === 0) throw new Error(`callgrind counted nothing for ${scenario} (window ${n})`);
        windows.push(total / requests);
        const previous = windows.at(-2);
        if (previous !== undefined && Math.abs(total / requests - previous) <= settings.tolerance * previous)
          break;
      }
      phase('counted');
      await control(child, ['-i', 'off']);
    } finally {
      client.close();
    }
    child.send({ type: 'exit' });
    const [code] = (await once(child, 'exit')) as [number | null];
    if (code !== 0) throw new Error(`${scenario} server exited with ${code}:\n${stderr}`);
    const profiled = profile ? selfCostByFunction(dir, files, child.pid as number, requests) : undefined;
    return {
      perRequest: windows.at(-1) as number,
      windows,
      threads: files.length,
      seconds: (performance.now() - started) / 1000,
      phases,
      functions: profiled?.functions,
      calls: profiled?.calls,
    };
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    if (!profile) rmSync(dir, { recursive: true, force: true });
    else process.stderr.write(`  callgrind files of ${scenario} kept in ${dir}\n`);
  }
}

/** The server's port, once it listens. Slow under valgrind (tens of seconds on Node 24). */
async function ready(child: ChildProcess, stderr: () => string): Promise<number> {
  const message = new Promise<number>((resolve, reject) => {
    child.once('message', (m: { type: string; port: number }) => resolve(m.port));
    child.once('exit', (code) =>
      reject(new Error(`server exited with ${code} before listening:\n${stderr()}`)),
    );
  });
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`server not listening after 300 s:\n${stderr()}`)), 300_000);
  });
  try {
    return await Promise.race([message, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

async function control(child: ChildProcess, command: string[]): Promise<void> {
  const { stdout } = await run('callgrind_control', [...command, String(child.pid)]);
  if (!/OK/.test(stdout)) throw new Error(`callgrind_control ${command.join(' ')} failed:\n${stdout}`);
}

/** CPU time below which a 250 ms interval of the server counts as idle. */
const IDLE_TICKS = 2;

/**
 * Waits until a process has used (almost) no CPU over a 250 ms interval, twice in a row; returns the
 * seconds waited. Linux: reads /proc/<pid>/stat (utime + stime, in clock ticks, of every thread).
 */
async function quiet(pid: number): Promise<number> {
  const started = performance.now();
  const cpu = () => {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
    return Number(fields[11]) + Number(fields[12]);
  };
  let last = cpu();
  let idle = 0;
  while (idle < 2 && performance.now() - started < 120_000) {
    await new Promise((resolve) => setTimeout(resolve, 250));
    const now = cpu();
    idle = now - last <= IDLE_TICKS ? idle + 1 : 0;
    last = now;
  }
  return Math.round(performance.now() - started) / 1000;
}

/**
 * A keep-alive HTTP/1.1 client on one connection, one request at a time: the same bytes every time, so
 * that the server does the same work for each. (Raw, not node:http: nothing of the client's own to tune.)
 */
async function connect(port: number) {
  const socket = net.connect(port, '127.0.0.1');
  socket.setNoDelay(true);
  await once(socket, 'connect');
  const request = Buffer.from('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n\r\n');
  let buffered = '';
  let done: ((error?: Error) => void) | undefined;
  socket.setEncoding('latin1');
  socket.on('data', (chunk: string) => {
    buffered += chunk;
    const end = buffered.indexOf('\r\n\r\n');
    if (end === -1) return;
    const head = buffered.slice(0, end);
    const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? Number.NaN);
    if (buffered.length < end + 4 + length) return;
    buffered = buffered.slice(end + 4 + length);
    const callback = done;
    done = undefined;
    callback?.(head.startsWith('HTTP/1.1 200 ') ? undefined : new Error(`unexpected response: ${head}`));
  });
  socket.on('error', (error) => done?.(error));
  socket.on('close', () => done?.(new Error('the server closed the connection')));
  return {
    async get(count: number): Promise<void> {
      for (let i = 0; i < count; i++) {
        await new Promise<void>((resolve, reject) => {
          done = (error) => (error === undefined ? resolve() : reject(error));
          socket.write(request);
        });
      }
    },
    close: () => socket.destroy(),
  };
}

/** The `totals:` (or, in older formats, `summary:`) line of one callgrind output file: its `Ir`. */
function totalOf(text: string): number {
  const totals = /^totals:\s*(\d+)/m.exec(text) ?? /^summary:\s*(\d+)/m.exec(text);
  return totals === null ? 0 : Number(totals[1]);
}

/**
 * Self instructions per request by function, over every thread's file. Functions without a symbol (JIT
 * code: callgrind names them by address) are named from /tmp/perf-<pid>.map, which `--perf-basic-prof`
 * writes, as `JS:<name>`; instructions in code none of them covers are `JIT:?`.
 */
function selfCostByFunction(
  dir: string,
  files: string[],
  pid: number,
  requests: number,
): { functions: Record<string, number>; calls: Record<string, number> } {
  const jit = readPerfMap(`/tmp/perf-${pid}.map`);
  const label = (name: string) => (/^0x[0-9a-f]+$/i.test(name) ? jit(Number.parseInt(name, 16)) : name);
  const byName = new Map<string, number>();
  const calls = new Map<string, number>();
  for (const file of files) {
    for (const [name, cost] of selfCosts(readFileSync(path.join(dir, file), 'utf8'), calls)) {
      byName.set(label(name), (byName.get(label(name)) ?? 0) + cost);
    }
  }
  rmSync(`/tmp/perf-${pid}.map`, { force: true });
  // Calls into named code (builtins, the runtime), by caller: `caller -> callee`, inclusive.
  const byCall = new Map<string, number>();
  for (const [edge, cost] of calls) {
    const [caller, callee] = edge.split('\u0000') as [string, string];
    if (/^0x/i.test(callee)) continue;
    const name = `${label(caller)} -> ${callee}`;
    byCall.set(name, (byCall.get(name) ?? 0) + cost);
  }
  const perRequest = (map: Map<string, number>) =>
    Object.fromEntries([...map].sort((a, b) => b[1] - a[1]).map(([name, cost]) => [name, cost / requests]));
  return { functions: perRequest(byName), calls: perRequest(byCall) };
}

/**
 * A callgrind file's self cost per function: the cost lines under each `fn=`, leaving out the line after
 * each `calls=` (the inclusive cost of that call, which belongs to the callee).
 */
function selfCosts(text: string, calls?: Map<string, number>): Map<string, number> {
  const names = new Map<string, string>();
  const costs = new Map<string, number>();
  let current = '';
  let callee = '';
  let skipNext = false;
  for (const line of text.split('\n')) {
    if (line.startsWith('fn=')) {
      current = compressedName(line.slice(3), names);
      continue;
    }
    if (line.startsWith('cfn=')) {
      callee = compressedName(line.slice(4), names); // also defines the name for later references
      continue;
    }
    if (line.startsWith('calls=')) {
      skipNext = true;
      continue;
    }
    const first = line.charCodeAt(0);
    const isCost = (first >= 48 && first <= 57) || first === 43 || first === 45 || first === 42; // 0-9 + - *
    if (!isCost) continue;
    const cost = Number(line.trim().split(/\s+/)[1] ?? 0);
    if (skipNext) {
      // The inclusive cost of a call from `current` to `callee`.
      skipNext = false;
      if (calls !== undefined && cost > 0) {
        const edge = `${current}\u0000${callee}`;
        calls.set(edge, (calls.get(edge) ?? 0) + cost);
      }
      continue;
    }
    if (cost > 0) costs.set(current, (costs.get(current) ?? 0) + cost);
  }
  return costs;
}

/** `(12) name` defines id 12, `(12)` refers to it (callgrind's name compression). */
function compressedName(spec: string, names: Map<string, string>): string {
  const match = /^\((\d+)\)(?: (.*))?$/.exec(spec);
  if (match === null) return spec;
  const [, id, name] = match as unknown as [string, string, string | undefined];
  if (name !== undefined) names.set(id, name);
  return names.get(id) ?? spec;
}

/** Looks addresses up in a perf map (`start size name` per line, hex), as V8's --perf-basic-prof writes it. */
function readPerfMap(file: string): (address: number) => string {
  let entries: Array<[number, number, string]> = [];
  try {
    entries = readFileSync(file, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((line) => {
        const [start, size, ...name] = line.split(' ');
        return [Number.parseInt(start as string, 16), Number.parseInt(size as string, 16), name.join(' ')];
      });
  } catch {
    // no map: JIT code stays unnamed
  }
  entries.sort((a, b) => a[0] - b[0]);
  return (address) => {
    let low = 0;
    let high = entries.length - 1;
    let found: [number, number, string] | undefined;
    while (low <= high) {
      const middle = (low + high) >> 1;
      const entry = entries[middle] as [number, number, string];
      if (entry[0] <= address) {
        found = entry;
        low = middle + 1;
      } else high = middle - 1;
    }
    // The last code object starting at or before the address; V8 may reuse space, so a later entry wins.
    return found !== undefined && address < found[0] + found[1] ? `JS:${found[2]}` : 'JIT:?';
  };
}

const k = (instructions: number) => `${(instructions / 1000).toFixed(1)} k`;

/** The table as markdown, one row per Node, in the layout. */
export function renderInstructionTable(results: InstructionResults): string {
  const columns = allScenarios.filter((name) => results.nodes.some((node) => node.scenarios[name]));
  const lines = [
    `| instructions per request | ${columns.map((name) => instructionScenarios[name].title).join(' | ')} |`,
    `|---|${columns.map(() => '---').join('|')}|`,
  ];
  for (const node of results.nodes) {
    const cells = columns.map((name) => {
      const count = node.scenarios[name];
      if (count === undefined) return '';
      const ratio = node.ratios[name];
      return ratio === undefined ? k(count.perRequest) : `${k(count.perRequest)} (${ratio.toFixed(3)})`;
    });
    lines.push(`| Node ${node.version} | ${cells.join(' | ')} |`);
  }
  const targets = columns.map((name) => {
    const target = instructionTargets[name];
    return target === undefined ? '' : `≥ ${target.toFixed(2)}`;
  });
  lines.push(`| target ratio | ${targets.join(' | ')} |`);
  lines.push(
    '',
    `Ratio = bare ÷ variant (S6 against bare Koa with \`asyncLocalStorage: true\`). Counted by callgrind in ` +
      `windows of ${results.requests.toLocaleString('en')} sequential keep-alive requests after ` +
      `${results.warmup.toLocaleString('en')} uncounted ones, until two windows agree within 0.5%; all ` +
      'threads (JIT and GC included)' +
      (results.reps > 1 ? `; median of ${results.reps} servers each.` : '.'),
  );
  return lines.join('\n');
}

/** The library against its floor: each ratio beside the floor's, and their difference. */
export function renderFloorTable(results: InstructionResults): string {
  const pairs = (Object.entries(floors) as [InstructionScenario, InstructionScenario][]).filter(([lib, f]) =>
    results.nodes.some((node) => node.ratios[lib] !== undefined && node.ratios[f] !== undefined),
  );
  if (pairs.length === 0) return '';
  const lines = [
    `| against the floor | ${pairs.map(([lib]) => instructionScenarios[lib].title).join(' | ')} |`,
    `|---|${pairs.map(() => '---').join('|')}|`,
  ];
  for (const node of results.nodes) {
    const cells = pairs.map(([lib, f]) => {
      const ours = node.ratios[lib];
      const theirs = node.ratios[f];
      if (ours === undefined || theirs === undefined) return '';
      return `${ours.toFixed(3)} vs ${theirs.toFixed(3)} (${(ours - theirs >= 0 ? '+' : '') + (ours - theirs).toFixed(3)})`;
    });
    lines.push(`| Node ${node.version} | ${cells.join(' | ')} |`);
  }
  lines.push(
    '',
    `Each cell: the library's ratio to bare Koa vs the floor's (bench/floor.mjs), and the difference; the ` +
      `target is a difference of at most ${FLOOR_MARGIN} below the floor.`,
  );
  return lines.join('\n');
}

/** Which floor targets are missed, in words. */
export function missedFloors(results: InstructionResults): string[] {
  const missed: string[] = [];
  for (const node of results.nodes) {
    for (const [lib, f] of Object.entries(floors) as [InstructionScenario, InstructionScenario][]) {
      const ours = node.ratios[lib];
      const theirs = node.ratios[f];
      if (ours !== undefined && theirs !== undefined && theirs - ours > FLOOR_MARGIN)
        missed.push(`Node ${node.version} ${lib}: ${ours.toFixed(3)}, floor ${theirs.toFixed(3)}`);
    }
  }
  return missed;
}

/** Which targets are missed, in words (empty when all are met). */
export function missedTargets(results: InstructionResults): string[] {
  const missed: string[] = [];
  for (const node of results.nodes) {
    for (const [name, target] of Object.entries(instructionTargets) as [InstructionScenario, number][]) {
      const ratio = node.ratios[name];
      if (ratio !== undefined && ratio < target)
        missed.push(`Node ${node.version} ${name}: ${ratio.toFixed(3)} < ${target}`);
    }
  }
  return missed;
}

/** With `--profile`: each variant's functions against its baseline's, the biggest differences first. */
export function renderProfileDiff(results: InstructionResults, top = 25): string {
  const out: string[] = [];
  for (const node of results.nodes) {
    for (const name of allScenarios) {
      const { baseline } = instructionScenarios[name];
      const variant = node.scenarios[name]?.functions;
      const base = baseline === undefined ? undefined : node.scenarios[baseline]?.functions;
      if (variant === undefined || base === undefined) continue;
      const names = new Set([...Object.keys(variant), ...Object.keys(base)]);
      const rows = [...names]
        .map((fn) => [fn, (variant[fn] ?? 0) - (base[fn] ?? 0)] as const)
        .filter(([, delta]) => Math.abs(delta) >= 1)
        .sort((a, b) => Math.abs(b[1]) - Math.abs(a[1]));
      const total = rows.reduce((sum, [, delta]) => sum + delta, 0);
      out.push(`Node ${node.version} ${name} - ${baseline}: ${total.toFixed(0)} instructions/request`);
      for (const [fn, delta] of rows.slice(0, top)) out.push(`  ${delta.toFixed(0).padStart(7)}  ${fn}`);
    }
  }
  return out.join('\n');
}

/**
 * Where the figures go: bench/results/instructions.json, which bench/run.ts puts into bench/RESULTS.md, for
 * the whole default count only; a run narrowed or changed by any flag or BENCH_* variable (an experiment)
 * writes instructions.partial.json beside it unless `--json` says where, and leaves the results' file alone.
 */
function parseArgs(argv: string[]): InstructionOptions & { json: string } {
  const options: InstructionOptions & { json: string } = {
    json: path.join(benchDir, 'results', 'instructions.json'),
  };
  let jsonGiven = false;
  const list = (value: string | undefined) => (value ?? '').split(',').filter(Boolean);
  // The same variables as `npm run bench` (bench/run.ts) reads, overridden by flags.
  if (process.env.BENCH_NODES) options.nodes = list(process.env.BENCH_NODES);
  if (process.env.BENCH_ONLY) argv = ['--only', process.env.BENCH_ONLY, ...argv];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = () => {
      const next = argv[++i];
      if (next === undefined) throw new TypeError(`Expected a value after \`${arg}\``);
      return next;
    };
    if (arg === '--only') {
      const names = list(value());
      for (const name of names) {
        if (!Object.hasOwn(instructionScenarios, name))
          throw new TypeError(`Expected scenarios among ${allScenarios.join(', ')}, got \`${name}\``);
      }
      options.scenarios = names as InstructionScenario[];
    } else if (arg === '--node') options.nodes = list(value());
    else if (arg === '--warmup') options.warmup = Number(value());
    else if (arg === '--requests') options.requests = Number(value());
    else if (arg === '--reps') options.reps = Number(value());
    else if (arg === '--windows') options.windows = Number(value());
    else if (arg === '--tolerance') options.tolerance = Number(value());
    else if (arg === '--parallel') options.parallel = Number(value());
    else if (arg === '--profile') options.profile = true;
    else if (arg === '--no-floors') options.withoutFloors = true;
    else if (arg === '--json') {
      options.json = value();
      jsonGiven = true;
    } else if (arg === '--dist') options.dist = value();
    else if (arg === '--baselines-from')
      options.baselinesFrom = JSON.parse(readFileSync(value(), 'utf8')) as InstructionResults;
    else if (arg === '--node-flags') options.nodeFlags = value().split(' ').filter(Boolean);
    else if (arg === '--valgrind-flags') options.valgrindFlags = value().split(' ').filter(Boolean);
    else throw new TypeError(`Unknown argument \`${arg}\`; see the top of bench/instructions.ts`);
  }
  if (!jsonGiven && (argv.length > 0 || process.env.BENCH_NODES))
    options.json = path.join(benchDir, 'results', 'instructions.partial.json');
  return options;
}

const isMain =
  process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (isMain) {
  const options = parseArgs(process.argv.slice(2));
  const unavailable = await instructionsUnavailable();
  if (unavailable !== undefined) {
    console.error(`bench/instructions: ${unavailable}`);
    process.exit(1);
  }
  const results = await measureInstructions(options);
  mkdirSync(path.dirname(options.json), { recursive: true });
  writeFileSync(options.json, `${JSON.stringify(results, null, 2)}\n`);
  console.log(`\n${renderInstructionTable(results)}\n`);
  const floorTable = renderFloorTable(results);
  if (floorTable !== '') console.log(`${floorTable}\n`);
  for (const node of results.nodes) {
    for (const [name, count] of Object.entries(node.scenarios)) {
      if (count.runs.length > 1)
        console.log(
          `Node ${node.version} ${name}: spread ${(count.spread * 100).toFixed(2)}% over ${count.runs.length} servers`,
        );
    }
  }
  if (options.profile) console.log(`\n${renderProfileDiff(results)}\n`);
  const errors = results.nodes.flatMap((node) => node.errors.map((error) => `Node ${node.version} ${error}`));
  if (errors.length > 0) {
    console.error(`Not counted:\n${errors.join('\n')}`);
    process.exitCode = 1;
  }
  const missed = missedTargets(results);
  console.log(missed.length === 0 ? 'Every target met.' : `Targets missed: ${missed.join('; ')}`);
  const belowFloor = missedFloors(results);
  if (belowFloor.length > 0)
    console.log(`More than ${FLOOR_MARGIN} below the floor: ${belowFloor.join('; ')}`);
  console.log(`Written ${path.relative(process.cwd(), options.json)}`);
}
