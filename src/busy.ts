import type { Job, JobGroup } from './job.js';

/**
 * The groups (requests) with jobs not yet settled, oldest first, so that `drain()` can name those jobs when
 * it gives up. A group is in the list while its `unsettled` count, kept by the runner, is above zero. The
 * list is linked through the groups themselves, and holds groups rather than jobs: each store of a new
 * object into this long-lived one costs a write-barrier call, so one link per request.
 */
export class BusyList {
  #first: JobGroup | undefined;
  #last: JobGroup | undefined;

  /** Appends `group`, whose first pending job this is. */
  add(group: JobGroup): void {
    group.previousBusy = this.#last;
    if (this.#last === undefined) this.#first = group;
    else this.#last.nextBusy = group;
    this.#last = group;
  }

  /** Whether `group` is listed. */
  has(group: JobGroup): boolean {
    return group.previousBusy !== undefined || this.#first === group;
  }

  /** Takes out `group`, whose last pending job has settled. */
  remove(group: JobGroup): void {
    const { previousBusy: previous, nextBusy: next } = group;
    if (previous === undefined) this.#first = next;
    else previous.nextBusy = next;
    if (next === undefined) this.#last = previous;
    else next.previousBusy = previous;
    group.previousBusy = undefined;
    group.nextBusy = undefined;
  }

  /** The jobs not yet settled, request by request, each request's in the order they were scheduled. */
  unsettled(): Job[] {
    const jobs: Job[] = [];
    for (let group = this.#first; group !== undefined; group = group.nextBusy) group.collectUnsettled(jobs);
    return jobs;
  }
}
