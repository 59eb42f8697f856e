// A server in a child process, for the tests that send it SIGTERM: test/fixtures/*.ts print
// `listening PORT` when ready, and whatever else the test reads, on stdout.
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import http from 'node:http';
import { scriptArgs } from './runtime.js';

export interface ChildServer {
  readonly child: ChildProcess;
  readonly port: number;
  /** Everything it has printed so far. */
  out(): string;
  /** Resolves once it has printed `text`. */
  printed(text: string): Promise<void>;
  /** Sends SIGTERM; resolves with its exit code. */
  terminate(): Promise<number | null>;
}

/** Starts `test/fixtures/<name>` with `env` added; resolves once it listens. */
export async function startChild(name: string, env: Record<string, string>): Promise<ChildServer> {
  const script = new URL(`./fixtures/${name}`, import.meta.url).pathname;
  const child = spawn(process.execPath, scriptArgs(script, { typescript: true }), {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout?.setEncoding('utf8');
  child.stdout?.on('data', (chunk: string) => {
    out += chunk;
  });
  const port = await new Promise<number>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`child exited early with ${code}: ${out}`)));
    child.stdout?.on('data', () => {
      const match = /listening (\d+)/.exec(out);
      if (match) resolve(Number(match[1]));
    });
  });
  child.removeAllListeners('exit');
  return {
    child,
    port,
    out: () => out,
    printed: async (text) => {
      while (!out.includes(text)) await once(child.stdout as NodeJS.ReadableStream, 'data');
    },
    terminate: async () => {
      const exited = once(child, 'exit');
      // process.kill(), not child.kill(): after child.kill(), Deno's node:child_process reports the child
      // as ended by that signal (code null) even when it caught it and exited with a code of its own.
      process.kill(child.pid as number, 'SIGTERM');
      const [code] = (await exited) as [number | null];
      return code;
    },
  };
}

/** `GET path(id)` for ids 0 to count - 1, at once; resolves when every 200 response is in. */
export async function getAll(port: number, count: number, path: (id: number) => string): Promise<void> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 20 });
  try {
    await Promise.all(
      Array.from(
        { length: count },
        (_, id) =>
          new Promise<void>((resolve, reject) => {
            http
              .get({ port, host: '127.0.0.1', path: path(id), agent }, (res) => {
                res.resume();
                res.on('end', () =>
                  res.statusCode === 200 ? resolve() : reject(new Error(`${res.statusCode}`)),
                );
              })
              .on('error', reject);
          }),
      ),
    );
  } finally {
    agent.destroy();
  }
}
