import { raincheck } from './middleware.js';
import type { Scheduled } from './scheduled.js';

export {
  type OutsideRequest,
  type Rainchecked,
  type RaincheckedOptions,
  rainchecked,
  schedule,
  setOutsideRequest,
} from './ambient.js';
export type { RaincheckStats } from './counts.js';
export {
  type OutsideRequestReason,
  RaincheckDrainTimeoutError,
  RaincheckJobError,
  RaincheckOutsideRequestError,
  RaincheckOverflowError,
  RaincheckTimeoutError,
} from './errors.js';
export type { DrainResult } from './idle.js';
export { Job, type JobState } from './job.js';
export { jobReporter, jobSignal } from './job-context.js';
export { type RaincheckMiddleware, raincheck } from './middleware.js';
export { type DropReason, type RaincheckOptions, type ResponseOutcome, succeeded } from './options.js';
export { QUEUE } from './schedule.js';
export { Scheduled } from './scheduled.js';
export { atomic, RaincheckTransaction, type TransactionState } from './transaction.js';
export default raincheck;

declare module 'koa' {
  interface ExtendableContext {
    /**
     * Calls `fn(...args)` after the response has been sent, without making the client wait. Identical calls
     * in one request (same `fn`, equal `args`) run once. Needs `app.use(raincheck())` upstream.
     * @returns whether the call was queued or collapsed into an earlier one, and `.always()` to run the
     * job even if the request fails.
     * @throws {TypeError} when `fn` is not a function.
     */
    raincheck<Args extends unknown[]>(fn: (...args: Args) => unknown, ...args: NoInfer<Args>): Scheduled;
  }
}
