// Runs one doc block in a child `node`: as a script to its end, or as an app that listens, which gets the
// run's requests over real HTTP and is then stopped.
import { type ChildProcess, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { scriptArgs } from '../runtime.js';
import type { Block } from './blocks.js';
import type { HttpRequest, Run } from './runs.js';
import { isCommonJs } from './typecheck.js';

const preload = pathToFileURL(
  path.join(path.dirname(new URL(import.meta.url).pathname), 'listen-preload.mjs'),
);

export interface Response {
  readonly status: number;
  readonly body: string;
}

export interface RunResult {
  readonly stdout: string;
  readonly stderr: string;
  readonly exitCode: number | null;
  readonly responses: readonly Response[];
  /** Where in `stdout` the last response was over (its 'close' line ends there); 0 without requests. */
  readonly lastResponseEnd: number;
}

/** Writes prelude + block + epilogue into `dir` as `<name>.mjs` (`.cjs` for CommonJS); returns its path. */
export function writeRunnable(dir: string, name: string, block: Block, run: Run): string {
  const file = path.join(dir, `${name}.${isCommonJs(block.code) ? 'cjs' : 'mjs'}`);
  writeFileSync(file, [run.prelude ?? '', block.code, run.epilogue ?? ''].join('\n'));
  return file;
}

/**
 * Runs `file`; `requests` are the run's own or those of its requests block. A run that has not printed what
 * is expected within `deadlineMs` fails with what it printed, and its child is killed: no process outlives it.
 */
export async function runFile(
  file: string,
  run: Run,
  requests: readonly HttpRequest[],
  deadlineMs: number,
): Promise<RunResult> {
  const child = spawn(process.execPath, scriptArgs(file, { preload: preload.href }), {
    cwd: path.dirname(file),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  // 'close', not 'exit': by then stdout and stderr have given everything.
  const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  const describe = () => `stdout:\n${stdout}\nstderr:\n${stderr}`;
  /** Resolves once stdout satisfies `test`; rejects if the child exits first. */
  const printed = <T>(test: (out: string) => T | undefined): Promise<T> =>
    new Promise((resolve, reject) => {
      const check = () => {
        const found = test(stdout);
        if (found === undefined) return;
        child.stdout.off('data', check);
        resolve(found);
      };
      child.stdout.on('data', check);
      exited.then((code) =>
        reject(new Error(`the block exited (${code}) before it printed what was expected\n${describe()}`)),
      );
      check();
    });

  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`no result within ${deadlineMs} ms\n${describe()}`)),
      deadlineMs,
    );
  });
  try {
    return await Promise.race([deadline, drive()]);
  } finally {
    clearTimeout(timer);
    stop(child);
  }

  async function drive(): Promise<RunResult> {
    const listens = run.requests !== undefined || run.stop !== undefined || requests.length > 0;
    if (!listens) {
      const exitCode = await exited;
      return { stdout, stderr, exitCode, responses: [], lastResponseEnd: 0 };
    }
    const port = await printed((out) => /^docs-test: listening (\d+)$/m.exec(out)?.[1]);
    const responses: Response[] = [];
    for (const request of requests) {
      const response = await fetch(`http://127.0.0.1:${port}${request.path}`, {
        method: request.method,
        headers: { ...request.headers },
        ...(request.body === undefined ? {} : { body: request.body }),
      });
      responses.push({ status: response.status, body: await response.text() });
    }
    const lastResponseEnd = await printed((out) => {
      const closes = [...out.matchAll(/^docs-test: response closed .*\n/gm)];
      const last = closes[requests.length - 1];
      return closes.length < requests.length
        ? undefined
        : last === undefined
          ? 0
          : (last.index ?? 0) + last[0].length;
    });
    await printed((out) =>
      (run.after ?? []).every((line) => out.slice(lastResponseEnd).includes(line)) ? true : undefined,
    );
    await printed((out) => ((run.prints ?? []).every((line) => out.includes(line)) ? true : undefined));
    // process.kill(), not child.kill(): after child.kill(), Deno's node:child_process reports the child as
    // ended by that signal (exit code null) even when it caught it and exited with a code of its own.
    process.kill(child.pid as number, run.stop?.signal ?? 'SIGTERM');
    const exitCode = await exited;
    return { stdout, stderr, exitCode, responses, lastResponseEnd };
  }
}

/** Kills the child if it still runs (a failed expectation), so that no process outlives the test. */
function stop(child: ChildProcess): void {
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
}
