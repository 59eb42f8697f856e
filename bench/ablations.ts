// What each feature costs the hot path, against the floor: builds of the library with features taken out
// of its compiled code, counted by bench/instructions.ts beside the same build left whole. Scratch copies of
// dist/ under bench/results/ablations/, never shipped: an ablated build is not correct (no stats, no
// drain(), no handle, ...), it only shows what the feature's code costs a request.
//
//   npm run build && npx tsx bench/ablations.ts           every ablation and `all`: S3, S3K on Node current, 24
//   npx tsx bench/ablations.ts --only drain,all --scenarios S2,S3 --node 24
//
// Each ablation is a list of exact replacements in dist/cjs (tsc's output of src/): one that does not match
// throws, naming it, rather than count a build that was not changed. test/ablations.test.ts checks that each
// applies to the current build and that each ablated build still runs its jobs.
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  floors,
  type InstructionResults,
  type InstructionScenario,
  instructionsUnavailable,
  measureInstructions,
} from './instructions.js';

/** In `file` (under dist/cjs), `from` becomes `to`: once, or at every match with `all`. */
type Patch = readonly [file: string, from: string, to: string, all?: boolean];

interface Ablation {
  /** What is taken out, for the table. */
  readonly what: string;
  readonly patches: readonly Patch[];
}

/** In the order `all` applies them (two of them change neighbouring lines of `#finish`). */
export const ablations: Readonly<Record<string, Ablation>> = {
  handle: {
    what: 'the `Scheduled` handle each call returns',
    patches: [
      [
        'request-queue.js',
        'this.#runner.countDeduped();\n        return new scheduled_js_1.Scheduled(earlier, true);',
        'this.#runner.countDeduped();\n        return undefined;',
      ],
      [
        'request-queue.js',
        'this.#last = job;\n        return new scheduled_js_1.Scheduled(job, false);',
        'this.#last = job;\n        return undefined;',
      ],
    ],
  },
  stats: {
    what: 'the counts behind `stats` (calls, jobs scheduled, succeeded)',
    patches: [
      ['runner.js', 'this.#counts.deduped++;', ''],
      ['runner.js', 'this.#counts.scheduled++;', ''],
      [
        'runner.js',
        "if (state === 'succeeded') {\n            this.#counts.succeeded++;\n        }",
        "if (state === 'succeeded') {\n        }",
      ],
    ],
  },
  drain: {
    what: 'the busy list and counts of `drain()` and `onIdle()`',
    patches: [
      ['request-queue.js', 'runner.listBusy(this); // made for its first job', ''],
      ['request-queue.js', 'this.unsettled++; // listed as busy', '// '],
      ['runner.js', 'if (--group.unsettled === 0)\n            this.#busy.remove(group);', ''],
      [
        'runner.js',
        'if (this.#idle.waiters.length !== 0 && this.#counts.pending === 0)\n            this.#idle.wake();',
        '',
      ],
    ],
  },
  slots: {
    what: "`concurrency`'s slots, coalescing's checks and the job's state",
    patches: [
      [
        'runner.js',
        'if ((job.asked !== undefined || this.#coalescing.ttl !== undefined) && this.#coalesced(job, ctx))\n' +
          '            return;\n        const slots = this.#slots;\n' +
          '        if (slots.running < slots.concurrency) {\n            this.#start(job, ctx);\n' +
          '            return;\n        }',
        '{ this.#start(job, ctx); return; }',
      ],
      ['runner.js', "this.#slots.running++;\n        job.state = 'running';", ''],
      ['runner.js', "if (job.state !== 'running')\n            return;", ''],
      [
        'runner.js',
        'job.state = state;\n        const slots = this.#slots;\n        slots.running--;',
        'const slots = this.#slots;',
      ],
      [
        'runner.js',
        'if (job.asked !== undefined)\n            this.#coalescing.ended(job);\n        (0, report_js_1.publishEnd)',
        '(0, report_js_1.publishEnd)',
      ],
      [
        'runner.js',
        'this.#settle(job);\n        if (slots.waiting !== 0)\n            this.#startWaiting();',
        'this.#settle(job);',
      ],
    ],
  },
  channels: {
    what: 'the diagnostics channels and the tracing hook (koa-raincheck/otel)',
    patches: [
      ['runner.js', 'const startedAt = (0, report_js_1.publishStart)(job);', 'const startedAt = undefined;'],
      [
        'runner.js',
        '(0, report_js_1.publishEnd)(job, startedAt, error);\n' +
          '        if (instrument_js_1.instrument !== undefined)\n' +
          '            instrument_js_1.instrument.ended(job, ctx, error, undefined);',
        '',
      ],
      [
        'runner.js',
        'if (instrument_js_1.instrument !== undefined)\n            instrument_js_1.instrument.scheduled(job);',
        '',
      ],
      [
        'job-context.js',
        'return instrument_js_1.instrument === undefined ? invoke(this) : instrumented(this);',
        'return invoke(this);',
        true,
      ],
    ],
  },
  jobsignal: {
    what: '`jobSignal()` and `jobReporter()` finding the job (its scope knows it)',
    patches: [
      ['job.js', 'scope[exports.JOB] = job;', ''],
      [
        'job-context.js',
        'if (current !== undefined)\n        return enterCurrent.call(this); // `current` must not answer in here',
        '',
      ],
    ],
  },
  outcome: {
    what: '`runWhen` and the outcome it is given (the floor reads the status)',
    patches: [
      [
        'request-queue.js',
        'const outcome = {\n            status: res.statusCode,\n            threw,\n            error,\n' +
          '            aborted: (0, response_end_js_1.wasAborted)(res),\n        };',
        'const outcome = res.statusCode;',
      ],
      [
        'runner.js',
        'try {\n            return this.settings.runWhen(outcome) === true;\n        }',
        'try {\n            return outcome < 400;\n        }',
      ],
    ],
  },
  settle: {
    what: 'a settled job letting go of its request and scope (so that a kept job keeps no request alive)',
    patches: [
      [
        'runner.js',
        'job.group = undefined;\n        job.scope = undefined;\n        if (job.asked',
        'if (job.asked',
      ],
    ],
  },
  checks: {
    what: "`ctx.raincheck()`'s check of `this`, and its lookup of a `rainchecked()` wrapper",
    patches: [
      [
        'schedule.js',
        "if (this === null || typeof this !== 'object')\n" +
          "        throw notCalledOnContext(); // undefined's type is not 'object'",
        '',
      ],
      ['schedule.js', 'const target = fn[exports.WRAPPED] ?? fn;', 'const target = fn;'],
    ],
  },
};

/** The names `ablate()` takes: each ablation, `all` of them, or `none` (the build as it is). */
export const ablationNames = [...Object.keys(ablations), 'all', 'none'];

/**
 * Copies the build `dist` (holding index.js and cjs/) to `into` and applies the ablation `name`.
 * @throws {Error} naming the patch that did not match.
 */
export function ablate(name: string, dist: string, into: string): void {
  const applied = name === 'all' ? Object.keys(ablations) : name === 'none' ? [] : [name];
  for (const one of applied) {
    if (!Object.hasOwn(ablations, one))
      throw new TypeError(`Expected an ablation among ${ablationNames.join(', ')}, got \`${one}\``);
  }
  rmSync(into, { recursive: true, force: true });
  cpSync(dist, into, { recursive: true });
  for (const one of applied) {
    for (const [file, from, to, all] of (ablations[one] as Ablation).patches) {
      const target = path.join(into, 'cjs', file);
      const text = readFileSync(target, 'utf8');
      const matches = text.split(from).length - 1;
      if (matches === 0 || (matches > 1 && all !== true)) {
        throw new Error(
          `ablation ${one}: ${matches} matches in dist/cjs/${file} of ${JSON.stringify(from.slice(0, 70))}: ` +
            'the compiled code changed; update the patch in bench/ablations.ts',
        );
      }
      writeFileSync(target, all === true ? text.split(from).join(to) : text.replace(from, () => to));
    }
  }
}

const benchDir = path.dirname(fileURLToPath(import.meta.url));

async function main(argv: readonly string[]): Promise<void> {
  let names = ablationNames.filter((name) => name !== 'none');
  let scenarios: InstructionScenario[] = ['S3', 'S3K'];
  let nodes = ['current', '24'];
  for (let i = 0; i < argv.length; i += 2) {
    const [flag, value] = [argv[i], argv[i + 1]];
    if (value === undefined) throw new TypeError(`Expected a value after \`${flag}\``);
    if (flag === '--only') names = value.split(',');
    else if (flag === '--scenarios') scenarios = value.split(',') as InstructionScenario[];
    else if (flag === '--node') nodes = value.split(',');
    else throw new TypeError(`Unknown argument \`${flag}\`; see the top of bench/ablations.ts`);
  }
  // Before the first count, which takes minutes.
  const unknown = names.find((name) => !ablationNames.includes(name));
  if (unknown !== undefined)
    throw new TypeError(`Expected ablations among ${ablationNames.join(', ')}, got \`${unknown}\``);
  const unavailable = await instructionsUnavailable();
  if (unavailable !== undefined) throw new Error(`bench/ablations: ${unavailable}`);
  const dist = path.join(benchDir, '..', 'dist');
  if (!existsSync(path.join(dist, 'cjs', 'index.js')))
    throw new Error('bench/ablations: run `npm run build` first');
  const out = path.join(benchDir, 'results', 'ablations');
  mkdirSync(out, { recursive: true });

  // The whole build first, with its floors and baselines; each ablation then against the same baselines.
  const counted = new Map<string, InstructionResults>();
  for (const name of ['none', ...names]) {
    const into = path.join(out, name);
    ablate(name, dist, into);
    console.log(
      `ablation ${name}: ${name === 'none' ? 'the build as it is' : (ablations[name]?.what ?? 'all of them')}`,
    );
    const results = await measureInstructions({
      scenarios,
      nodes,
      dist: into,
      withoutFloors: name !== 'none',
      baselinesFrom: counted.get('none'),
      log: (line) => console.log(`  ${line}`),
    });
    writeFileSync(path.join(out, `${name}.json`), `${JSON.stringify(results, null, 2)}\n`);
    counted.set(name, results);
  }
  console.log(`\n${renderAblations(counted, scenarios)}`);
}

/** Instructions per request of each build, and each ablation's difference from the whole build. */
function renderAblations(counted: Map<string, InstructionResults>, scenarios: InstructionScenario[]): string {
  const whole = counted.get('none') as InstructionResults;
  const columns = whole.nodes.flatMap((node, n) => scenarios.map((scenario) => ({ node, n, scenario })));
  const k = (value: number | undefined) => (value === undefined ? '–' : `${(value / 1000).toFixed(2)} k`);
  const lines = [
    `| build | ${columns.map(({ node, scenario }) => `${scenario}, Node ${node.version}`).join(' | ')} |`,
    `|---|${columns.map(() => '---').join('|')}|`,
  ];
  for (const [name, results] of counted) {
    const cells = columns.map(({ n, scenario }) => {
      const count = results.nodes[n]?.scenarios[scenario]?.perRequest;
      const base = whole.nodes[n]?.scenarios[scenario]?.perRequest;
      if (name === 'none' || count === undefined || base === undefined) return k(count);
      const delta = count - base;
      return `${k(count)} (${delta < 0 ? '−' : '+'}${(Math.abs(delta) / 1000).toFixed(2)})`;
    });
    lines.push(`| ${name} | ${cells.join(' | ')} |`);
  }
  const floorCells = columns.map(({ n, scenario }) => {
    const floor = (floors as Partial<Record<InstructionScenario, InstructionScenario>>)[scenario];
    return k(floor === undefined ? undefined : whole.nodes[n]?.scenarios[floor]?.perRequest);
  });
  lines.push(`| the floor | ${floorCells.join(' | ')} |`);
  return lines.join('\n');
}

const isMain =
  process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (isMain) await main(process.argv.slice(2));
