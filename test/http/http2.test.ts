import { once } from 'node:events';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import type { ResponseOutcome } from '../../src/index.js';
import { appWith, deferred } from '../helpers.js';

describe('ctx.raincheck(fn, ...args) over HTTP/2', () => {
  async function h2(app: ReturnType<typeof appWith>['app']) {
    const server = http2.createServer(app.callback());
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const client = http2.connect(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    return {
      client,
      close: async () => {
        client.close();
        server.close();
        await once(server, 'close');
      },
    };
  }

  it('runs the job after the response has finished', async () => {
    const { app, rc } = appWith();
    const ran: boolean[] = [];
    app.use(async (ctx) => {
      ctx.raincheck(() => ran.push(ctx.res.writableFinished));
      ctx.body = 'ok';
    });
    const { client, close } = await h2(app);
    try {
      const stream = client.request({ ':path': '/' });
      stream.setEncoding('utf8');
      let body = '';
      stream.on('data', (chunk: string) => {
        body += chunk;
      });
      await once(stream, 'end');
      expect(body).to.equal('ok');
      await rc.onIdle();
    } finally {
      await close();
    }
    expect(ran).to.deep.equal([true]);
  });

  it('sees a reset stream as aborted, though Node emits finish for it', async () => {
    const outcomes: ResponseOutcome[] = [];
    const { app, rc } = appWith({
      runWhen: (outcome) => {
        outcomes.push(outcome);
        return !outcome.aborted;
      },
      onDrop: () => {},
    });
    const ran: string[] = [];
    const reset = deferred();
    app.use(async (ctx) => {
      ctx.raincheck(() => ran.push('job'));
      (ctx.res as unknown as http2.Http2ServerResponse).stream.once('aborted', () => reset.resolve());
      await reset.promise;
      ctx.body = 'too late';
    });
    const { client, close } = await h2(app);
    try {
      const stream = client.request({ ':path': '/' });
      stream.on('error', () => {});
      stream.close(http2.constants.NGHTTP2_CANCEL);
      await reset.promise;
      await rc.onIdle();
    } finally {
      await close();
    }
    expect(outcomes).to.have.length(1);
    expect(outcomes[0]?.aborted).to.equal(true);
    expect(ran).to.deep.equal([]);
  });
});
