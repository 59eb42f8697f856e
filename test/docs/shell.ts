// Checks the sh blocks: every command is one the docs test knows, `npm run X` names a script of package.json,
// `npm install X` a package the README means; curl lines become the requests sent to a run block.
import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { root } from './blocks.js';

const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as {
  name: string;
  scripts: Record<string, string>;
  peerDependencies: Record<string, string>;
  devDependencies: Record<string, string>;
};

/** Installed beside the package or its peers in the README's instructions, so the repo tests with them. */
const companions = ['ioredis', '@koa/router', '@koa/bodyparser', '@types/koa', 'typescript'];

/** The packages an `npm install` in the docs may name: the package, its peers and the companions above. */
export function meantPackages(): Set<string> {
  return new Set([pkg.name, ...Object.keys(pkg.peerDependencies), ...companions]);
}

/** A request a curl line sends. */
export interface CurlRequest {
  readonly method: string;
  /** The URL as written, e.g. `localhost:3000/signup`. */
  readonly url: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string | undefined;
}

/** Splits a command line into words, as sh would for plain, single- and double-quoted words. */
export function words(line: string): string[] {
  const result: string[] = [];
  let word: string | undefined;
  for (let i = 0; i < line.length; i++) {
    const char = line[i] as string;
    if (char === "'" || char === '"') {
      const end = line.indexOf(char, i + 1);
      if (end === -1) throw new Error(`unclosed ${char} in: ${line}`);
      word = (word ?? '') + line.slice(i + 1, end);
      i = end;
    } else if (char === ' ' || char === '\t') {
      if (word !== undefined) result.push(word);
      word = undefined;
    } else if (char === '#' && word === undefined) {
      break; // a comment
    } else {
      word = (word ?? '') + char;
    }
  }
  if (word !== undefined) result.push(word);
  return result;
}

/** The request of a curl command, or a problem. */
export function parseCurl(args: readonly string[]): CurlRequest | string {
  let method: string | undefined;
  let url: string | undefined;
  let body: string | undefined;
  const headers: Record<string, string> = {};
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string;
    const value = () => {
      const next = args[++i];
      if (next === undefined) throw new Error(`${arg} needs a value`);
      return next;
    };
    if (arg === '-X' || arg === '--request') method = value();
    else if (arg === '-H' || arg === '--header') {
      const [name = '', ...rest] = value().split(':');
      headers[name.trim().toLowerCase()] = rest.join(':').trim();
    } else if (arg === '-d' || arg === '--data' || arg === '--data-raw') body = value();
    else if (arg === '-i' || arg === '--include' || arg === '-s' || arg === '--silent') {
      // output options: nothing to send
    } else if (arg.startsWith('-')) return `curl option ${arg} is not one the docs test knows`;
    else if (url === undefined) url = arg;
    else return `curl with two URLs: ${url} and ${arg}`;
  }
  if (url === undefined) return 'curl without a URL';
  // curl's own rule: -d makes it a POST with a form content type unless told otherwise.
  if (body !== undefined) headers['content-type'] ??= 'application/x-www-form-urlencoded';
  return { method: method ?? (body === undefined ? 'GET' : 'POST'), url, headers, body };
}

export interface ShellCheck {
  readonly problems: string[];
  readonly requests: CurlRequest[];
}

/** Checks one sh block; `curl` is allowed only in a block that is the requests of a run. */
export function checkShell(code: string, at: (line: number) => string, curlAllowed: boolean): ShellCheck {
  const problems: string[] = [];
  const requests: CurlRequest[] = [];
  const lines = code.split('\n');
  for (let index = 0; index < lines.length; index++) {
    const first = index;
    let line = lines[index] as string;
    while (line.endsWith('\\') && index + 1 < lines.length) line = `${line.slice(0, -1)} ${lines[++index]}`;
    checkLine(line, first);
  }
  return { problems, requests };

  function checkLine(line: string, index: number): void {
    const problem = (text: string) => problems.push(`${at(index)}: ${text}: ${line.trim()}`);
    try {
      checkWords(words(line), problem);
    } catch (error) {
      problem((error as Error).message);
    }
  }

  function checkWords(args: string[], problem: (text: string) => void): void {
    while (args[0] !== undefined && /^[A-Z_][A-Z0-9_]*=/.test(args[0])) args.shift(); // VAR=value prefixes
    const [command, ...rest] = args;
    if (command === undefined) return;
    if (command === 'npm') {
      const found = checkNpm(rest);
      if (found !== undefined) problem(found);
    } else if (command === 'node') {
      const script = rest.find((arg) => !arg.startsWith('-'));
      if (script === undefined || !existsSync(path.join(root, script)))
        problem('node runs a file that is not in the repo');
    } else if (command.includes('/')) {
      try {
        accessSync(path.join(root, command), constants.X_OK);
      } catch {
        problem('not an executable file of the repo');
      }
    } else if (command === 'curl') {
      if (!curlAllowed)
        problem('curl in a block that is not the requests of a run (<!-- docs-test: requests NAME -->)');
      else {
        const request = parseCurl(rest);
        if (typeof request === 'string') problem(request);
        else requests.push(request);
      }
    } else {
      problem(`\`${command}\` is not a command the docs test knows how to check`);
    }
  }
}

/** What is wrong with an npm command line, if anything. */
export function checkNpm(args: readonly string[]): string | undefined {
  const [sub, ...rest] = args;
  if (sub === 'ci' || sub === 'test' || sub === 't')
    return rest.length === 0 ? undefined : `npm ${sub} with arguments`;
  if (sub === 'run' || sub === 'run-script') {
    const script = rest[0];
    if (script === undefined || !Object.hasOwn(pkg.scripts, script))
      return `no script \`${script}\` in package.json`;
    if (rest.length > 1 && rest[1] !== '--') return `arguments to npm run go after \`--\``;
    return undefined;
  }
  if (sub === 'install' || sub === 'i' || sub === 'add') {
    const names = rest.filter((arg) => !arg.startsWith('-')).map((spec) => spec.replace(/(?<=.)@.*$/, ''));
    if (names.length === 0) return 'npm install of nothing (use npm ci)';
    const meant = meantPackages();
    const unknown = names.filter((name) => !meant.has(name));
    if (unknown.length > 0)
      return `npm install of ${unknown.join(', ')}: not the package, a peer or a companion`;
    const untested = names.filter((name) => name !== pkg.name && !Object.hasOwn(pkg.devDependencies, name));
    if (untested.length > 0)
      return `npm install of ${untested.join(', ')}, which the repo does not test with`;
    return undefined;
  }
  return `npm ${sub ?? ''} is not a command the docs test knows how to check`;
}

/** Problems of the `npm run X` commands written in the prose (inline code) of a Markdown file. */
export function checkInlineNpmRuns(doc: string, proseLines: readonly string[]): string[] {
  const problems: string[] = [];
  proseLines.forEach((line, index) => {
    for (const match of line.matchAll(/`npm run ([^\s`]+)/g)) {
      const script = match[1] as string;
      if (!Object.hasOwn(pkg.scripts, script)) problems.push(`${doc}:${index + 1}: no script \`${script}\``);
    }
  });
  return problems;
}
