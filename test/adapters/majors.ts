// Which installed majors of a queue library (npm aliases in devDependencies) this Node can run: each
// package's own `engines.node`, read from node_modules, so a major that raises its minimum is not run where
// it would not be supported.
import { readFileSync } from 'node:fs';

export interface Major {
  /** As the tests' titles say it, e.g. `pg-boss 11`. */
  readonly label: string;
  /** The name it is installed under, e.g. `pg-boss-11`. */
  readonly module: string;
}

/** `engines.node` of the package installed as `module`, e.g. `>=22.12.0`. */
export function enginesOf(module: string): string {
  const path = new URL(`../../node_modules/${module}/package.json`, import.meta.url);
  const engines = JSON.parse(readFileSync(path, 'utf8')).engines?.node;
  return typeof engines === 'string' ? engines : '*';
}

/** Whether this Node satisfies a `>=X[.Y[.Z]]` (or `*`) range; any other form is an error to handle here. */
export function nodeSatisfies(range: string, version = process.versions.node): boolean {
  if (range.trim() === '*') return true;
  const match = /^>=\s*(\d+)(?:\.(\d+))?(?:\.(\d+))?$/.exec(range.trim());
  if (match === null)
    throw new Error(`engines range \`${range}\` is not understood by test/adapters/majors.ts`);
  const wanted = match.slice(1).map((part) => Number(part ?? 0));
  const have = version.split('.').map(Number);
  for (let i = 0; i < 3; i++) {
    if ((have[i] ?? 0) !== wanted[i]) return (have[i] ?? 0) > (wanted[i] ?? 0);
  }
  return true;
}

/**
 * The majors this Node can run; prints one line naming the others and why (e.g. on Node 20:
 * `not run on Node 20.20.2: pg-boss 12 (needs Node >=22.12.0), pg-boss 11 (needs Node >=22)`).
 */
export function majorsForThisNode<M extends Major>(majors: readonly M[]): M[] {
  const runnable = majors.filter((major) => nodeSatisfies(enginesOf(major.module)));
  const others = majors.filter((major) => !runnable.includes(major));
  if (others.length > 0) {
    const why = others.map((major) => `${major.label} (needs Node ${enginesOf(major.module)})`);
    console.log(`not run on Node ${process.versions.node}: ${why.join(', ')}`);
  }
  return runnable;
}
