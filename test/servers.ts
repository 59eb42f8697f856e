// Servers for the server-backed tests (adapters, example:durable): the one at REDIS_URL / DATABASE_URL when
// set, else a throwaway one started from the system's binaries, else the suite is not registered and one
// line says what to install (a failing test instead under RAINCHECK_REQUIRE_SERVERS=1). Tests reach it
// through a loopback proxy they can cut and restore: an outage, even on a server this run does not own.
import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readdirSync, realpathSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

export type ServerKind = 'redis' | 'postgres';

const NEEDS = {
  redis: {
    what: 'Redis',
    env: 'REDIS_URL',
    defaultPort: 6379,
    install: 'install redis-server (Debian: apt-get install redis-server)',
  },
  postgres: {
    what: 'PostgreSQL',
    env: 'DATABASE_URL',
    defaultPort: 5432,
    install: 'install PostgreSQL (Debian: apt-get install postgresql)',
  },
} as const;

/** A server this process started, stopped for good (and its directory removed) by `close()`. */
export interface OwnServer {
  readonly url: string;
  close(): Promise<void>;
}

/** Where this run gets a server of `kind` from. */
export type ServerSource =
  | { readonly type: 'url'; readonly url: string }
  | { readonly type: 'binaries'; readonly start: () => Promise<OwnServer> }
  | { readonly type: 'missing'; readonly why: string };

/** Decided synchronously, at load time: mocha registers suites synchronously. */
export function serverSource(kind: ServerKind): ServerSource {
  const url = process.env[NEEDS[kind].env];
  if (url) return { type: 'url', url };
  const bins = kind === 'redis' ? ['redis-server'] : ['initdb', 'pg_ctl'];
  const missing = bins.filter((bin) => findBin(bin) === undefined);
  if (missing.length > 0) {
    const where = kind === 'redis' ? 'on PATH' : 'on PATH or under /usr/lib/postgresql/*/bin';
    const verb = missing.length > 1 ? 'are' : 'is';
    return {
      type: 'missing',
      why: `${missing.join(' and ')} ${verb} not ${where} and ${NEEDS[kind].env} is not set`,
    };
  }
  return { type: 'binaries', start: kind === 'redis' ? startRedis : startPostgres };
}

/** RAINCHECK_REQUIRE_SERVERS=1 (set by .ci/run): a missing server fails the run instead of skipping. */
export const serversRequired = !['', '0', undefined].includes(process.env.RAINCHECK_REQUIRE_SERVERS);

/**
 * Registers what `register` declares only when a server of `kind` can be had. Otherwise prints one line,
 * `skipped: <subject> needs Redis: install … or set REDIS_URL`, or, when servers are required, registers a
 * test that fails saying what is missing. `subject` is singular: `the koa-raincheck/bullmq suite`.
 */
export function whenServer(kind: ServerKind, subject: string, register: () => void): void {
  const source = serverSource(kind);
  if (source.type !== 'missing') {
    register();
    return;
  }
  const { what, env, install } = NEEDS[kind];
  if (!serversRequired) {
    console.log(`skipped: ${subject} needs ${what}: ${install} or set ${env}`);
    return;
  }
  describe(subject, () => {
    it(`has ${what} to run against`, () => {
      throw new Error(
        `no ${what} for ${subject}: ${source.why}. To run it, ${install} or set ${env}; ` +
          'RAINCHECK_REQUIRE_SERVERS makes this a failure instead of a skip',
      );
    });
  });
}

/** A server for the tests, reached through a proxy: `cut()` is an outage until `restore()`. */
export interface TestServer {
  /** The server's URL with the proxy's host and port in it. */
  readonly url: string;
  /** Drops every connection and refuses new ones, as a server that went down. */
  cut(): Promise<void>;
  /** Accepts connections again, on the same port. */
  restore(): Promise<void>;
}

/**
 * In the current `describe`: a server of `kind` for its tests (started before them, closed after), behind a
 * proxy of its own. The getter throws if the `before` hook failed, and the `after` hook copes with that.
 */
export function useServer(kind: ServerKind): () => TestServer {
  let own: OwnServer | undefined;
  let proxy: (TestServer & { close(): Promise<void> }) | undefined;
  before(async function () {
    this.timeout(60_000);
    const source = serverSource(kind);
    if (source.type === 'missing') throw new Error(`no ${NEEDS[kind].what}: ${source.why}`);
    own = source.type === 'binaries' ? await source.start() : undefined;
    proxy = await startProxy(source.type === 'url' ? source.url : (own as OwnServer).url, kind);
  });
  after(async () => {
    await proxy?.close();
    await own?.close();
  });
  return () => {
    if (proxy === undefined) throw new Error(`no ${NEEDS[kind].what}: its before hook failed`);
    return proxy;
  };
}

/** ioredis connection options (as BullMQ takes them) for a `redis://` URL. */
export function redisConnection(url: string): {
  host: string;
  port: number;
  username?: string;
  password?: string;
  db?: number;
} {
  const parsed = new URL(url);
  const db = Number(parsed.pathname.slice(1));
  return {
    host: parsed.hostname.replace(/^\[(.*)\]$/, '$1'),
    port: Number(parsed.port || NEEDS.redis.defaultPort),
    ...(parsed.username ? { username: decodeURIComponent(parsed.username) } : {}),
    ...(parsed.password ? { password: decodeURIComponent(parsed.password) } : {}),
    ...(db > 0 ? { db } : {}),
  };
}

/** A loopback TCP proxy to the server at `url` (host and port only: TLS and sockets are not rewritten). */
async function startProxy(url: string, kind: ServerKind): Promise<TestServer & { close(): Promise<void> }> {
  const target = new URL(url);
  const host = target.hostname.replace(/^\[(.*)\]$/, '$1');
  if (host === '')
    throw new Error(`${NEEDS[kind].env} must name a TCP host and port (a socket path is not proxied)`);
  const port = Number(target.port || NEEDS[kind].defaultPort);
  // Fail here, once, rather than in every test that would wait for a server that is not there.
  const probe = net.connect(port, host);
  await once(probe, 'connect').catch((error: Error) => {
    throw new Error(`cannot reach ${NEEDS[kind].what} at ${host}:${port}: ${error.message}`);
  });
  probe.destroy();
  const sockets = new Set<net.Socket>();
  const track = (socket: net.Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {}); // a reset while cut: the other side sees its socket close
  };
  const server = net.createServer((client) => {
    const upstream = net.connect(port, host);
    track(client);
    track(upstream);
    client.pipe(upstream).pipe(client);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  let listening = 0;
  const listen = async () => {
    server.listen(listening, '127.0.0.1');
    await once(server, 'listening');
    listening = (server.address() as net.AddressInfo).port;
  };
  const cut = async () => {
    if (!server.listening) return;
    const closed = once(server, 'close');
    server.close();
    for (const socket of sockets) socket.destroy();
    await closed;
  };
  await listen();
  const proxied = new URL(url);
  proxied.hostname = '127.0.0.1';
  proxied.port = String(listening);
  return {
    url: proxied.href,
    cut,
    restore: async () => {
      if (!server.listening) await listen();
    },
    close: cut,
  };
}

/**
 * `name` on PATH, or (for PostgreSQL's) where Debian's postgresql package puts it. For PostgreSQL's, the
 * real path, symlinks resolved: as root, PostgreSQL's binaries run as the `postgres` user, who may not enter the PATH directory
 * that holds a symlink to them (a private bin directory of root's), and would fail with "Permission denied".
 */
export function findBin(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(':')) {
    if (dir === '' || !existsSync(join(dir, name))) continue;
    // Not redis-server's: it is a symlink to redis-check-rdb, which acts by the name it was called by.
    return name === 'redis-server' ? join(dir, name) : realpathSync(join(dir, name));
  }
  if (name === 'redis-server' || !existsSync('/usr/lib/postgresql')) return undefined;
  for (const version of readdirSync('/usr/lib/postgresql').sort(byNumber).reverse()) {
    const path = join('/usr/lib/postgresql', version, 'bin', name);
    if (existsSync(path)) return path;
  }
  return undefined;
}

function byNumber(a: string, b: string): number {
  return Number.parseFloat(a) - Number.parseFloat(b) || a.localeCompare(b);
}

function requireBin(name: string, kind: ServerKind): string {
  const path = findBin(name);
  if (path === undefined) throw new Error(`${name} not found: ${NEEDS[kind].install}`);
  return path;
}

// Own servers still up when the process exits (a run ended by a failure, or a crashed example) are stopped
// on the way out, synchronously: PostgreSQL daemonizes and would outlive it.
const stopOnExit = new Set<() => void>();
let exitHooked = false;
function untilExit(stop: () => void): () => void {
  if (!exitHooked) {
    exitHooked = true;
    process.once('exit', () => {
      for (const stopNow of stopOnExit) stopNow();
    });
  }
  stopOnExit.add(stop);
  return () => stopOnExit.delete(stop);
}

/** A free TCP port on 127.0.0.1. */
export async function freePort(): Promise<number> {
  const server = net.createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  server.close();
  await once(server, 'close');
  return port;
}

/** A redis-server of its own, on a free loopback port, in a temp dir, persisting nothing. */
export async function startRedis(): Promise<OwnServer> {
  const bin = requireBin('redis-server', 'redis');
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'raincheck-redis-'));
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'];
  const child: ChildProcess = spawn(bin, [...args, '--dir', dir], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    await new Promise<void>((resolve, reject) => {
      let out = '';
      child.once('error', reject);
      child.once('exit', (code) => reject(new Error(`redis-server exited with ${code}: ${out}`)));
      child.stdout?.on('data', (chunk: Buffer) => {
        out += chunk.toString();
        if (out.includes('Ready to accept connections')) resolve();
      });
    });
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  child.removeAllListeners('exit');
  child.stdout?.resume();
  const forget = untilExit(() => {
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });
  return {
    url: `redis://127.0.0.1:${port}`,
    close: async () => {
      forget();
      if (child.exitCode === null && child.signalCode === null) {
        const exited = once(child, 'exit');
        child.kill('SIGKILL');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A PostgreSQL server of its own (initdb in a temp dir), on a free loopback port. */
export async function startPostgres(): Promise<OwnServer> {
  const initdb = requireBin('initdb', 'postgres');
  const pgCtl = requireBin('pg_ctl', 'postgres');
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'raincheck-pg-'));
  // PostgreSQL refuses to run as root: as root, run it as the postgres user the package creates.
  const asRoot = process.getuid?.() === 0;
  if (asRoot) execFileSync('chown', ['postgres:postgres', dir]);
  const command = (bin: string, args: string[]) =>
    [asRoot ? 'runuser' : bin, asRoot ? ['-u', 'postgres', '--', bin, ...args] : args] as const;
  const run = (bin: string, args: string[]) => promisify(execFile)(...command(bin, args));
  const data = join(dir, 'data');
  const stopArgs = ['-D', data, '-m', 'immediate', '-w', 'stop'];
  const options = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off`;
  try {
    await run(initdb, ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync']);
    await run(pgCtl, ['-D', data, '-o', options, '-l', join(dir, 'log'), '-w', 'start']);
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  const forget = untilExit(() => {
    try {
      execFileSync(...command(pgCtl, stopArgs), { stdio: 'ignore' });
    } catch {}
    rmSync(dir, { recursive: true, force: true });
  });
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    close: async () => {
      forget();
      await run(pgCtl, stopArgs).catch(() => {});
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
