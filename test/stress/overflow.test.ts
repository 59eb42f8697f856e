import http from 'node:http';
import { expect } from 'chai';
import { type RaincheckJobError, RaincheckOverflowError } from '../../src/index.js';
import { appWith, deferred, listen } from '../helpers.js';

describe('raincheck({ maxWaiting: 100 }) under 1,000 jobs', function () {
  this.timeout(30_000);

  it('reports exactly the overflowed jobs, runs every other one, and keeps answering', async () => {
    const reported: RaincheckJobError[] = [];
    const { app, rc } = appWith({
      concurrency: 10,
      maxWaiting: 100,
      onError: (error) => reported.push(error),
    });
    const release = deferred();
    const scheduledOrder: number[] = [];
    const ran = new Set<number>();
    app.use(async (ctx) => {
      const id = Number(ctx.query.id);
      ctx.raincheck(async (n: number) => {
        await release.promise;
        ran.add(n);
      }, id);
      scheduledOrder.push(id);
      ctx.body = 'ok';
    });
    const { url, close } = await listen(app);
    const agent = new http.Agent({ keepAlive: true, maxSockets: 50 });
    const get = (path: string) =>
      new Promise<number>((resolve, reject) => {
        http
          .get(`${url}${path}`, { agent }, (res) => {
            res.resume();
            res.on('end', () => resolve(res.statusCode ?? 0));
          })
          .on('error', reject);
      });
    try {
      const statuses = await Promise.all(Array.from({ length: 1000 }, (_, id) => get(`/?id=${id}`)));
      expect(statuses.every((s) => s === 200)).to.equal(true);
      await new Promise((resolve) => setImmediate(resolve));
      expect(rc.stats).to.include({ running: 10, waiting: 100, dropped: 890 });
      expect(await get('/?id=1000')).to.equal(200); // still answering; this one overflows too
      await new Promise((resolve) => setImmediate(resolve));
      release.resolve();
      await rc.onIdle();
    } finally {
      agent.destroy();
      await close();
    }
    // 10 running + 100 waiting ran; every other job was reported, once, as overflowed: none lost silently.
    const overflowed = reported.map((e) => e.job.args[0] as number);
    expect(reported.every((e) => e instanceof RaincheckOverflowError)).to.equal(true);
    expect(ran.size).to.equal(110);
    expect(new Set(overflowed).size).to.equal(891);
    expect([...ran, ...overflowed].sort((a, b) => a - b)).to.deep.equal(
      [...scheduledOrder].sort((a, b) => a - b),
    );
    expect(rc.stats).to.include({ scheduled: 1001, succeeded: 110, dropped: 891, running: 0, waiting: 0 });
  });
});
