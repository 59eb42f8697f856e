import type { ServerResponse } from 'node:http';
import type { Http2ServerResponse } from 'node:http2';

/** The response object Koa hands us, over HTTP/1 or through the HTTP/2 compatibility API. */
export type NodeResponse = ServerResponse | Http2ServerResponse;

/**
 * Calls `callback` once, when the response is over: every byte handed to the socket (`'finish'`), or the
 * connection gone first (`'close'`). `aborted` tells the two apart.
 *
 * Node's own events rather than on-finished: on-finished reports a client abort exactly like success, and
 * when attached after `res.end()` it fires on `setImmediate`, before the data has been flushed.
 */
export function onResponseEnd(res: NodeResponse, callback: (aborted: boolean) => void): void {
  if (isOver(res)) {
    callback(wasAborted(res));
    return;
  }
  const done = (): void => {
    res.off('finish', done);
    res.off('close', done);
    callback(wasAborted(res));
  };
  res.on('finish', done);
  res.on('close', done);
}

function isOver(res: NodeResponse): boolean {
  if (res.writableFinished) return true;
  return 'stream' in res ? res.stream.closed : res.destroyed;
}

/**
 * HTTP/1: an abort never reaches `'finish'`. HTTP/2: a reset stream still emits `'finish'` with
 * `writableFinished` set, so the stream itself is asked.
 */
function wasAborted(res: NodeResponse): boolean {
  if (!res.writableFinished) return true;
  return 'stream' in res && res.stream.aborted;
}
