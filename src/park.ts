import { type Asked, askedOf, type Job } from './job.js';

/**
 * Jobs held by a transaction (see transaction.ts) whose response is over: every call that wants such a
 * job was made inside a transaction not yet committed. The runner parks it instead of running it; it stays
 * pending, and is handed back once a transaction commits or all roll back, to run or be dropped then.
 */
export function park(job: Job, release: (job: Job) => void): void {
  askedOf(job).parked = release;
}

/** A parked job no longer held: hands it back to the runner. Nothing for a job not parked. */
export function unpark(job: Job): void {
  const asked = job.asked;
  const release = asked?.parked;
  if (release === undefined) return;
  (asked as Asked).parked = undefined;
  release(job);
}
