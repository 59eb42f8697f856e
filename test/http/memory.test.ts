import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { expect } from 'chai';
import request from 'supertest';
import { appWith, deferred } from '../helpers.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** Lets the current job end (a WeakRef keeps its target until then), then collects garbage. */
async function collectGarbage(): Promise<void> {
  await new Promise(setImmediate);
  gc();
}

describe('ctx.raincheck(fn, ...args) and memory', () => {
  it("keeps the request's ctx while its job runs, and lets it go once the job has settled", async () => {
    const { app, rc } = appWith();
    const finish = deferred();
    let ctxRef: WeakRef<object> | undefined;
    app.use((ctx) => {
      ctxRef = new WeakRef(ctx);
      ctx.raincheck(() => finish.promise); // a job that does not close over ctx
      ctx.body = 'ok';
    });
    await request(app.callback()).get('/').expect(200);
    await collectGarbage();
    expect(ctxRef?.deref(), 'ctx while the job runs').to.not.equal(undefined);
    finish.resolve();
    await rc.onIdle();
    await collectGarbage();
    expect(ctxRef?.deref(), 'ctx after the job settled').to.equal(undefined);
  });
});
