import { AsyncLocalStorage } from 'node:async_hooks';
import { transactionsChanged } from './schedule.js';
import { holdCall, keepCall, rollBackCall, type Scheduled, updateHold } from './scheduled.js';
import { typeName } from './type-name.js';

/** Where a transaction is in its life: see `RaincheckTransaction`. */
export type TransactionState = 'open' | 'committed' | 'rolledBack';

/** The transaction whose function is running, through its timers and callbacks too. */
const current = new AsyncLocalStorage<RaincheckTransaction>();

/**
 * The jobs scheduled inside a database transaction, kept when it commits and dropped when it rolls back,
 * for code that writes `BEGIN` and `COMMIT` itself; `atomic()` is the same for transactions run as a
 * callback. Jobs scheduled inside `run()` (by `ctx.raincheck()`, `schedule()`, a wrapper's `.schedule()`,
 * the adapters, and by timers and callbacks started there) wait for `commit()` and are dropped by
 * `rollback()`, with the reason `'rolledBack'`. Made inside another one's `run()`, it is nested in it, as a
 * savepoint is: its jobs are kept only if every transaction around it commits too.
 */
export class RaincheckTransaction {
  #state: TransactionState = 'open';
  /** The transaction it is nested in. */
  readonly #parent: RaincheckTransaction | undefined;
  /** The calls it holds: its own, and those of nested transactions that committed. */
  #calls: Scheduled[] | undefined;

  constructor() {
    this.#parent = current.getStore();
    transactionsChanged(1, enterTransaction);
  }

  /** `'open'` until `commit()` or `rollback()`. */
  get state(): TransactionState {
    return this.#state;
  }

  /**
   * Calls `fn()` inside the transaction: what it schedules, now or from what it starts, belongs to it.
   * Returns what `fn` returns.
   * @throws {TypeError} when `fn` is not a function.
   * @throws {Error} when the transaction has already committed or rolled back.
   */
  run<T>(fn: () => T): T {
    if (typeof fn !== 'function')
      throw new TypeError(`Expected \`fn\` to be a function, got \`${typeName(fn)}\``);
    this.#assertOpen('run()');
    return current.run(this, fn);
  }

  /**
   * The transaction committed: its jobs run as every job does (after the response, for a request that
   * succeeded), or, nested, they are kept until the one around it settles.
   * @throws {Error} when it has already committed or rolled back.
   */
  commit(): void {
    this.#assertOpen('commit()');
    this.#settle('committed');
    const calls = this.#calls;
    this.#calls = undefined;
    if (calls === undefined) return;
    const owner = this.#parent?.owner();
    if (owner === null) for (const call of calls) rollBackCall(call);
    else if (owner !== undefined) owner.#hold(calls);
    else for (const call of calls) keepCall(call);
  }

  /**
   * The transaction rolled back: its jobs (and those of nested ones) are dropped, reported to `onDrop` with
   * the reason `'rolledBack'`, unless an identical call outside it still wants the job.
   * @throws {Error} when it has already committed or rolled back.
   */
  rollback(): void {
    this.#assertOpen('rollback()');
    this.#settle('rolledBack');
    const calls = this.#calls;
    this.#calls = undefined;
    if (calls !== undefined) for (const call of calls) rollBackCall(call);
  }

  /**
   * @internal The open transaction that holds what is scheduled in this one: itself while open, else the
   * nearest open one around it; `undefined` when it and every one around it committed (nothing holds);
   * `null` when one of them rolled back (what is scheduled is dropped).
   */
  owner(): RaincheckTransaction | null | undefined {
    for (let tx: RaincheckTransaction | undefined = this; tx !== undefined; tx = tx.#parent) {
      if (tx.#state === 'open') return tx;
      if (tx.#state === 'rolledBack') return null;
    }
    return undefined;
  }

  #hold(calls: Scheduled[]): void {
    if (this.#calls === undefined) this.#calls = calls;
    else for (const call of calls) this.#calls.push(call);
  }

  /** @internal A call made inside this transaction's `run()`. */
  add(call: Scheduled): void {
    const owner = this.owner();
    if (owner === null) rollBackCall(call);
    else if (owner === undefined) updateHold(call.job);
    else {
      owner.#hold([call]);
      holdCall(call);
    }
  }

  #settle(state: 'committed' | 'rolledBack'): void {
    this.#state = state;
    transactionsChanged(-1, enterTransaction);
  }

  #assertOpen(what: string): void {
    if (this.#state !== 'open')
      throw new Error(
        `koa-raincheck: ${what} of a transaction that has already ${this.#state === 'committed' ? 'committed' : 'rolled back'}`,
      );
  }
}

/**
 * Makes the jobs scheduled inside `fn` follow its transaction: `fn` runs a database transaction as a
 * callback (`knex.transaction(cb)`, Kysely's `db.transaction().execute(cb)`, Drizzle's
 * `db.transaction(cb)`), so that its promise resolves once the transaction committed and rejects once it
 * rolled back. Resolved: the jobs are kept and run as every job does. Rejected: they are dropped (reason
 * `'rolledBack'`), and the rejection is passed on. Nested, it works as a savepoint. Returns `fn`'s result.
 * @throws {TypeError} when `fn` is not a function.
 */
export function atomic<T>(fn: () => T | PromiseLike<T>): Promise<Awaited<T>> {
  if (typeof fn !== 'function')
    throw new TypeError(`Expected \`fn\` to be a function, got \`${typeName(fn)}\``);
  const tx = new RaincheckTransaction();
  let result: T | PromiseLike<T>;
  try {
    result = tx.run(fn);
  } catch (error) {
    tx.rollback();
    return Promise.reject(error);
  }
  return Promise.resolve(result).then(
    (value) => {
      tx.commit();
      return value as Awaited<T>;
    },
    (error: unknown) => {
      tx.rollback();
      throw error;
    },
  );
}

/** @internal For the scheduling call (schedule.ts, while a transaction is open): the transaction it is made in, if any. */
export function enterTransaction(call: Scheduled): void {
  const tx = current.getStore();
  if (tx !== undefined) tx.add(call);
  else updateHold(call.job); // outside any: the call wants its job now, held or not
}
