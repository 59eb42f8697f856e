// The runtime the suite runs on (Node, or Bun or Deno through scripts/runtimes.mjs), for the few places
// that must know: the command lines of the child processes the tests start, and the assertions left out on
// one runtime for a reason of its own (each gate names it, and prints it in the run's output).

/** `'bun'` or `'deno'` when the suite runs there (scripts/runtimes.mjs), else `'node'`. */
export const runtime: 'node' | 'bun' | 'deno' =
  'Bun' in globalThis ? 'bun' : 'Deno' in globalThis ? 'deno' : 'node';

const names = { bun: 'Bun', deno: 'Deno' } as const;

/** The runtime and its version, e.g. `Node 20.20.2`, `Bun 1.4.5`, `Deno 2.9.6`. */
export const runtimeLabel =
  runtime === 'node'
    ? `Node ${process.versions.node}`
    : `${names[runtime]} ${(process.versions as Record<string, string | undefined>)[runtime]}`;

/**
 * Whether to leave out an assertion that does not hold on `on` for a reason of that runtime's own (`reason`
 * names the behaviour): `true` on that runtime, after printing the reason in the run's output, so that no
 * gate passes unseen; `false` elsewhere.
 */
export function gatedOn(on: 'bun' | 'deno', reason: string): boolean {
  if (runtime !== on) return false;
  console.log(`      (gated on ${names[on]}: ${reason})`);
  return true;
}

/**
 * The arguments for `process.execPath` that run `script` (TypeScript through tsx on Node) on the running
 * runtime, with `preload` (a path or file URL) loaded first and V8's `gc` exposed if asked. Node's flags
 * are Bun's too; Deno takes its own: its `node:child_process` drops `--import`, and a child does not inherit
 * the `--sloppy-imports` that lets the tests' `.js` specifiers find their `.ts` files.
 */
export function scriptArgs(
  script: string,
  options: { typescript?: boolean; preload?: string; exposeGc?: boolean } = {},
): string[] {
  const { typescript = false, preload, exposeGc = false } = options;
  if (runtime === 'deno') {
    return [
      'run',
      '--allow-all',
      '--sloppy-imports',
      ...(exposeGc ? ['--v8-flags=--expose-gc'] : []),
      ...(preload === undefined ? [] : ['--preload', preload]),
      script,
    ];
  }
  return [
    ...(exposeGc ? ['--expose-gc'] : []),
    ...(typescript ? ['--import', 'tsx'] : []),
    ...(preload === undefined ? [] : ['--import', preload]),
    script,
  ];
}
