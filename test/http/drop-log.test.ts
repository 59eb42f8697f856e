import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { expect } from 'chai';

const run = promisify(execFile);

describe("raincheck()'s default onDrop under NODE_DEBUG=koa-raincheck", () => {
  it('logs the path of the request, never its query string', async () => {
    // Tokens and addresses travel in query strings; a debug line ends up in logs kept for long.
    const { stderr } = await run(
      process.execPath,
      ['--import', 'tsx', new URL('../fixtures/drop-log.ts', import.meta.url).pathname],
      {
        env: {
          ...process.env,
          NODE_DEBUG: 'koa-raincheck',
          REQUEST_PATH: '/x?token=secret&email=ann%40example.com',
        },
      },
    );
    expect(stderr).to.match(
      /KOA-RAINCHECK \d+: dropped job audit\(\) of GET \/x: the response status was 404\n/,
    );
    expect(stderr).to.not.include('secret');
    expect(stderr).to.not.include('example.com');
    expect(stderr).to.not.include('?');
  });
});
