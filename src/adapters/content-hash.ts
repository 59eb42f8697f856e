import { createHash } from 'node:crypto';
import objectHash from 'object-hash';

/** A hash of what a job is (queue, name, data), the same in every process: the cross-request dedupe key. */
export function contentHash(queue: string, name: string, data: unknown): string {
  return createHash('sha1')
    .update(objectHash([queue, name, data === undefined ? null : data]))
    .digest('hex');
}
