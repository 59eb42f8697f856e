// Preloaded (`node --import`) into a doc block that is run: whatever port the block listens on, the server
// listens on a free loopback port and prints it, and every response prints a line when it is over (its
// 'close' event, the moment koa-raincheck starts the request's jobs), so the test can tell what a block
// printed after the response from what it printed before.
import http from 'node:http';

const listen = http.Server.prototype.listen;

http.Server.prototype.listen = function (...args) {
  const callback = typeof args.at(-1) === 'function' ? args.at(-1) : undefined;
  // First among the listeners, so its 'close' line comes before anything a job prints.
  this.prependListener('request', (req, res) => {
    res.once('close', () => {
      process.stdout.write(`docs-test: response closed ${req.method} ${req.url} ${res.statusCode}\n`);
    });
  });
  this.once('listening', () => process.stdout.write(`docs-test: listening ${this.address().port}\n`));
  return listen.call(this, 0, '127.0.0.1', callback);
};
