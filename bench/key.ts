import objectHash from 'object-hash';
// The built module as users run it (see server.mjs): dist/cjs/, which dist/index.js re-exports.
import { dedupeKey } from '../dist/cjs/key.js';

/** The key micro-benchmark's inputs: the argument lists a job is scheduled with. */
const inputs: Record<string, unknown[]> = {
  'three short strings': ['user@example.com', 'Welcome', 'Hello there'],
  'a 20-field object': [
    Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`field${i}`, i % 3 ? `v${i}` : i])),
  ],
  '1,000 small objects': [
    Array.from({ length: 1000 }, (_, i) => ({ id: i, name: `item ${i}`, ok: i % 2 === 0 })),
  ],
  'a 1 MB Buffer': [Buffer.alloc(1024 * 1024, 7)],
};

export interface KeyResult {
  input: string;
  dedupeKeyMicros: number;
  objectHashMicros: number;
  speedup: number;
}

/** Median microseconds per call of `fn`, over batches sized to take about 20 ms each. */
function microsPerCall(fn: () => unknown): number {
  const start = performance.now();
  let calls = 0;
  while (performance.now() - start < 20) {
    fn();
    calls++;
  }
  const batch = Math.max(1, calls);
  const perCall: number[] = [];
  for (let i = 0; i < 15; i++) {
    const t0 = performance.now();
    for (let c = 0; c < batch; c++) fn();
    perCall.push(((performance.now() - t0) * 1000) / batch);
  }
  perCall.sort((a, b) => a - b);
  return perCall[Math.floor(perCall.length / 2)] ?? Number.NaN;
}

export function measureKeys(): KeyResult[] {
  const fn = () => {};
  return Object.entries(inputs).map(([input, args]) => {
    const dedupeKeyMicros = microsPerCall(() => dedupeKey(fn, args));
    const objectHashMicros = microsPerCall(() => objectHash(args));
    return { input, dedupeKeyMicros, objectHashMicros, speedup: objectHashMicros / dedupeKeyMicros };
  });
}
