// One benchmark server: `node --expose-gc --import tsx bench/server.ts S2`, started by bench/run.ts over IPC.
import type { AddressInfo } from 'node:net';
import { appFor, type ScenarioName, scheduling } from './scenarios.js';

const name = process.argv[2] as ScenarioName;
const app = appFor(name);
let completed = 0;
app.middleware.unshift(async (_ctx, next) => {
  await next();
  completed++;
});
const server = app.listen(0, '127.0.0.1', () => {
  process.send?.({ type: 'ready', port: (server.address() as AddressInfo).port });
});

/** CPU time and completed requests so far, read before any GC this process is asked to do. */
export interface CpuSample {
  type: 'cpu';
  cpuMicros: number;
  completed: number;
  schedulingCalls: number;
  schedulingNanos: number;
}

/** Heap in use right after a full GC. */
export interface HeapSample {
  type: 'heap';
  heapAfterGC: number;
}

process.on('message', (message: { type: string }) => {
  if (message.type === 'cpu') {
    const cpu = process.cpuUsage();
    const sample: CpuSample = {
      type: 'cpu',
      cpuMicros: cpu.user + cpu.system,
      completed,
      schedulingCalls: scheduling.calls,
      schedulingNanos: Number(scheduling.nanoseconds),
    };
    process.send?.(sample);
  } else if (message.type === 'heap') {
    globalThis.gc?.();
    const sample: HeapSample = { type: 'heap', heapAfterGC: process.memoryUsage().heapUsed };
    process.send?.(sample);
  } else if (message.type === 'exit') {
    server.close();
    process.exit(0);
  }
});
