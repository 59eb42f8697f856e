// What a transaction scope costs (docs/transactions.md, "Cost"): `npm run build`, then
// `tsx bench/transaction.ts`. Not part of `npm run bench`: a request that opens no scope pays one load and
// compare (`openTransactions` in src/schedule.ts), which S1-S3 there measure. Medians of 7 runs, in ns per operation, on the
// built module as users run it.
import { atomic, RaincheckTransaction } from '../dist/cjs/index.js';
import { Job, type JobGroup } from '../dist/cjs/job.js';
import { Scheduled } from '../dist/cjs/scheduled.js';
import { enterTransaction } from '../dist/cjs/transaction.js';

/** Median ns per call of `fn` (sync), over 7 runs of `n` calls. */
function nsPerCall(n: number, fn: () => void): number {
  const runs: number[] = [];
  for (let run = 0; run < 7; run++) {
    const start = process.hrtime.bigint();
    for (let i = 0; i < n; i++) fn();
    runs.push(Number(process.hrtime.bigint() - start) / n);
  }
  return runs.sort((a, b) => a - b)[3] as number;
}

/** The same for an async `fn`, awaited one after another. */
async function nsPerAsyncCall(n: number, fn: () => Promise<unknown>): Promise<number> {
  const runs: number[] = [];
  for (let run = 0; run < 7; run++) {
    const start = process.hrtime.bigint();
    for (let i = 0; i < n; i++) await fn();
    runs.push(Number(process.hrtime.bigint() - start) / n);
  }
  return runs.sort((a, b) => a - b)[3] as number;
}

const group = { cancellable: () => true, cancel: () => {} };
/** A call as ctx.raincheck() makes one: a new job of a request, waiting for its response. */
function newCall(): Scheduled {
  const job = new Job(() => {}, [], undefined, false, group as unknown as JobGroup);
  return new Scheduled(job, false);
}

const body = async () => 1;
const results = {
  'await fn() (no scope)': await nsPerAsyncCall(100_000, body),
  'await atomic(fn)': await nsPerAsyncCall(100_000, () => atomic(body)),
  'RaincheckTransaction: new, run(fn), commit()': nsPerCall(200_000, () => {
    const tx = new RaincheckTransaction();
    tx.run(() => 1);
    tx.commit();
  }),
  'a call outside any scope': nsPerCall(200_000, () => {
    newCall();
  }),
  'a call held by a scope that commits': nsPerCall(200_000, () => {
    const tx = new RaincheckTransaction();
    tx.run(() => enterTransaction(newCall()));
    tx.commit();
  }),
  'a call dropped by a scope that rolls back': nsPerCall(200_000, () => {
    const tx = new RaincheckTransaction();
    tx.run(() => enterTransaction(newCall()));
    tx.rollback();
  }),
};
console.log(`Node ${process.versions.node}`);
for (const [what, ns] of Object.entries(results))
  console.log(`${what.padEnd(48)} ${ns.toFixed(0).padStart(6)} ns`);
