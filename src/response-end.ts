import type { ServerResponse } from 'node:http';
import type { Http2ServerResponse } from 'node:http2';

/** The response object Koa hands us, over HTTP/1 or through the HTTP/2 compatibility API. */
export type NodeResponse = ServerResponse | Http2ServerResponse;

/**
 * Calls `callback` once, when the response is over: every byte handed to the socket, or the connection gone
 * first. `wasAborted(res)` then tells the two apart.
 *
 * One `'close'` listener: Node emits `'close'` for every response, after `'finish'` (on the next tick) when
 * the response completed, alone when the connection went first; over HTTP/1 keep-alive and HTTP/2 too.
 * Node's own events rather than on-finished: on-finished reports a client abort exactly like success, and
 * when attached after `res.end()` it fires on `setImmediate`, before the data has been flushed.
 */
export function onResponseEnd(res: NodeResponse, callback: () => void): void {
  if (isOver(res)) callback();
  else res.on('close', callback); // not once(): 'close' comes once, and once() wraps
}

function isOver(res: NodeResponse): boolean {
  if (res.writableFinished) return true;
  return 'stream' in res ? res.stream.closed : res.destroyed;
}

/**
 * HTTP/1: an abort never reaches `'finish'`. HTTP/2: a reset stream still emits `'finish'` with
 * `writableFinished` set, so the stream itself is asked.
 */
export function wasAborted(res: NodeResponse): boolean {
  if (!res.writableFinished) return true;
  return 'stream' in res && res.stream.aborted;
}
