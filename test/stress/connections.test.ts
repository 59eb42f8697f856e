import { once } from 'node:events';
import http from 'node:http';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import type { ResponseOutcome } from '../../src/index.js';
import { appWith, deferred, listen } from '../helpers.js';

// Aborts, resets and reused connections: the documented behaviour holds, and nothing is left behind
// (no job pending, no listener piling up on a kept-alive socket).
describe('ctx.raincheck(fn, ...args) across aborts, resets and kept-alive connections', function () {
  this.timeout(30_000);

  it('runs the jobs of 50 requests aborted mid-response, with outcome.aborted, and leaves none pending', async () => {
    const outcomes: ResponseOutcome[] = [];
    const { app, rc } = appWith({
      runWhen: (o) => {
        outcomes.push(o);
        return true;
      },
    });
    let ran = 0;
    app.use(async (ctx) => {
      ctx.raincheck(() => {
        ran++;
      });
      ctx.respond = false;
      ctx.res.writeHead(200, { 'content-type': 'text/plain' });
      ctx.res.write('first part; the rest never comes');
    });
    const { url, close } = await listen(app);
    try {
      for (let i = 0; i < 50; i++) {
        const gotFirstPart = deferred();
        const req = http.get(url, (res) => res.once('data', () => gotFirstPart.resolve()));
        req.on('error', () => {});
        await gotFirstPart.promise;
        req.destroy();
      }
      await rc.onIdle();
    } finally {
      await close();
    }
    expect(ran).to.equal(50);
    expect(outcomes.every((o) => o.aborted)).to.equal(true);
    expect(rc.stats).to.include({ scheduled: 50, succeeded: 50, awaitingResponse: 0, running: 0 });
    expect(rc.pending).to.equal(0);
  });

  it('sees 50 reset HTTP/2 streams as aborted and drops their jobs under a runWhen that says so', async () => {
    const { app, rc } = appWith({ runWhen: (o) => !o.aborted, onDrop: () => {} });
    let ran = 0;
    let started = deferred();
    app.use(async (ctx) => {
      ctx.raincheck(() => {
        ran++;
      });
      ctx.respond = false;
      ctx.res.writeHead(200);
      ctx.res.write('partial');
      started.resolve();
    });
    const server = http2.createServer(app.callback());
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const client = http2.connect(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    try {
      for (let i = 0; i < 50; i++) {
        started = deferred();
        const stream = client.request({ ':path': '/' });
        stream.on('error', () => {});
        await started.promise;
        stream.close(http2.constants.NGHTTP2_CANCEL);
      }
      await rc.onIdle();
    } finally {
      client.close();
      server.close();
    }
    expect(ran).to.equal(0);
    expect(rc.stats).to.include({ scheduled: 50, dropped: 50, awaitingResponse: 0 });
  });

  it('leaves no listener behind on a socket reused by 200 kept-alive requests', async () => {
    const { app, rc } = appWith();
    const socketListeners: number[] = [];
    const responseListeners: number[] = [];
    let ran = 0;
    const count = (emitter: NodeJS.EventEmitter) =>
      emitter.eventNames().reduce((n, name) => n + emitter.listenerCount(name), 0);
    app.use(async (ctx) => {
      socketListeners.push(count(ctx.req.socket));
      ctx.raincheck(() => {
        ran++;
        responseListeners.push(count(ctx.res));
      });
      ctx.body = 'ok';
    });
    const { url, close } = await listen(app);
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const sockets = new Set<unknown>();
    try {
      for (let i = 0; i < 200; i++) {
        await new Promise<void>((resolve, reject) => {
          http
            .get(url, { agent }, (res) => {
              sockets.add(res.socket);
              res.resume();
              res.on('end', resolve);
            })
            .on('error', reject);
        });
      }
      await rc.onIdle();
    } finally {
      agent.destroy();
      await close();
    }
    expect(sockets.size).to.equal(1);
    expect(ran).to.equal(200);
    expect(
      new Set(socketListeners.slice(1)).size,
      `socket listeners: ${socketListeners.slice(0, 5)}`,
    ).to.equal(1);
    expect(new Set(responseListeners).size, `response listeners: ${responseListeners.slice(0, 5)}`).to.equal(
      1,
    );
    expect(rc.pending).to.equal(0);
  });
});
