// The test servers' set-up (test/servers.ts), where it depends on the machine it runs on.
import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { findBin } from './servers.js';

describe('findBin() of the test servers', () => {
  it('gives the real path of a binary found through a symlink in a private PATH directory', () => {
    const dir = mkdtempSync(join(tmpdir(), 'koa-raincheck-bin-'));
    const saved = process.env.PATH;
    try {
      const real = join(dir, 'real');
      mkdirSync(real);
      writeFileSync(join(real, 'initdb'), '#!/bin/sh\n', { mode: 0o755 });
      const private_ = join(dir, 'private');
      mkdirSync(private_);
      symlinkSync(join(real, 'initdb'), join(private_, 'initdb'));
      chmodSync(private_, 0o700); // root's own: the postgres user could not go through it
      process.env.PATH = `${private_}:${saved ?? ''}`;
      expect(findBin('initdb')).to.equal(join(real, 'initdb'));
    } finally {
      process.env.PATH = saved;
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("keeps redis-server's own name, which the binary it links to acts by", () => {
    const dir = mkdtempSync(join(tmpdir(), 'koa-raincheck-bin-'));
    const saved = process.env.PATH;
    try {
      writeFileSync(join(dir, 'redis-check-rdb'), '#!/bin/sh\n', { mode: 0o755 });
      symlinkSync(join(dir, 'redis-check-rdb'), join(dir, 'redis-server'));
      process.env.PATH = `${dir}:${saved ?? ''}`;
      expect(findBin('redis-server')).to.equal(join(dir, 'redis-server'));
    } finally {
      process.env.PATH = saved;
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
