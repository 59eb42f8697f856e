// Type-checks the js and ts blocks in one tsc run: each block is written to a .ts file (a .cjs file when it
// is CommonJS) after a prelude that declares the free names it uses, and tsc's errors are mapped back to
// the Markdown line they come from.
import { execFile } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { type Block, root, where } from './blocks.js';

/**
 * The names snippets use without defining them: the app's own code, which a snippet only calls. Library
 * names (raincheck, Koa, Router, ...) are never stubbed: a snippet imports them, so a renamed export fails.
 * Types are written as `import()` types, which need no import statement that could clash with the snippet's.
 */
export const stubs: Readonly<Record<string, string>> = {
  app: "InstanceType<typeof import('koa')>",
  router: "import('@koa/router').Router",
  ctx: "import('koa').Context",
  createUser: '(body: unknown) => Promise<{ id: number; email: string; name: string }>',
  sendWelcomeEmail: '(to: string, name?: string) => Promise<void>',
  sendConfirmation: '(orderId: number) => Promise<void>',
  mailer: '{ send(message: { to: string; subject: string }): Promise<void>; readonly sent: unknown[] }',
  db: '{ users: { insert(user: { email: string; name: string }): Promise<{ id: number; email: string; name: string }> } }',
  metrics:
    '{ increment(name: string, tags?: Record<string, string>): void; histogram(name: string, value: number, tags?: Record<string, string>): void }',
  mailApi: 'string',
  cache: '{ refresh(key: string): Promise<unknown> }',
  emailQueue: "import('bullmq').Queue",
  logger: '{ error(fields: object, message: string): void }',
  signupRoutes: "import('koa').Middleware",
  it: '(title: string, test: () => Promise<void>) => void',
};

/** Whether the snippet binds `name` at its top level (an import or a declaration), so no stub is needed. */
function binds(code: string, name: string): boolean {
  const n = name.replace(/[$]/g, '\\$');
  return [
    new RegExp(`\\b(?:const|let|var|class|function\\*?)\\s+${n}\\b`),
    new RegExp(`\\b(?:const|let|var)\\s*[{[][^}\\]]*\\b${n}\\b[^}\\]]*[}\\]]\\s*=`),
    new RegExp(`\\bimport\\s+(?:type\\s+)?${n}\\b`),
    new RegExp(`\\bimport\\s+[^;]*\\{[^}]*\\b${n}\\b[^}]*\\}\\s*from`),
  ].some((pattern) => pattern.test(code));
}

/** The stub declarations a snippet needs, one per line: TypeScript, or JSDoc for a JavaScript file. */
export function preludeFor(code: string, javascriptFile = false): string[] {
  return Object.entries(stubs)
    .filter(([name]) => new RegExp(`(?<![.\\w$])${name}\\b`).test(code) && !binds(code, name))
    .map(([name, type]) =>
      javascriptFile
        ? `/** @type {${type}} */ const ${name} = /** @type {any} */ (null);`
        : `declare const ${name}: ${type};`,
    );
}

/** A block in a file of the program. */
export interface CheckedFile {
  readonly file: string;
  readonly block: Block;
  /** How many prelude lines come before the block's first line. */
  readonly offset: number;
  /** Written from a js block: checked for names and call shapes, not for what JavaScript cannot say. */
  readonly javascript: boolean;
}

/** Whether a js block is CommonJS: it requires and never imports. */
export function isCommonJs(code: string): boolean {
  return /\brequire\(/.test(code) && !/^\s*import\b/m.test(code);
}

/** Writes the block as a file under `dir`; `name` defaults to where it comes from. */
export function writeChecked(dir: string, block: Block, name?: string): CheckedFile {
  const javascript = block.lang === 'js' || block.lang === 'javascript';
  const base = name ?? `${block.doc.replace(/[/.]/g, '-')}-L${block.line}`;
  // CommonJS stays JavaScript: only there does tsc read `require()` as an import (in a .ts file it is `any`).
  const commonJs = javascript && isCommonJs(block.code);
  const file = path.join(dir, `${base}.${commonJs ? 'cjs' : 'ts'}`);
  const prelude = preludeFor(block.code, commonJs);
  // `export {}` after an ES module block, so that one without imports is a module too (its names its own).
  writeFileSync(file, `${[...prelude, block.code].join('\n')}${commonJs ? '' : 'export {};\n'}`);
  return { file, block, offset: prelude.length, javascript };
}

export interface Diagnostic {
  /** Where it is: the Markdown line for a block, the file otherwise. */
  readonly at: string;
  readonly code: string;
  message: string;
  /** The checked file it is in, if any. */
  readonly checked: CheckedFile | undefined;
}

/**
 * Errors that only say what JavaScript cannot: implicit `any` (it has no annotations); a value of type
 * `unknown` read as the data it is (a body parser's `ctx.request.body`, a diagnostics_channel message); an
 * unannotated parameter that took `never` from its context (`rainchecked(fn)`), where JavaScript has `any`.
 * A misspelt name, a wrong import or a wrong number of arguments is still an error in a js block.
 */
function javascriptCanSay(code: string, message: string): boolean {
  const number = Number(code.slice(2));
  if (number >= 7000 && number < 8000 && number !== 7016) return false;
  if (code === 'TS18046' || code === 'TS2571') return false;
  if (code === 'TS2339' && message.includes("on type 'unknown'")) return false;
  if (code === 'TS2345' && /Type 'unknown' is not assignable|parameter of type 'never'/.test(message))
    return false;
  return true;
}

const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');

/** Runs tsc once over `dir` (its tsconfig.json); returns every diagnostic, mapped back to its block. */
export async function typecheck(dir: string, files: readonly CheckedFile[]): Promise<Diagnostic[]> {
  writeFileSync(
    path.join(dir, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        target: 'es2022',
        lib: ['es2023'],
        module: 'nodenext',
        moduleResolution: 'nodenext',
        types: ['node'],
        strict: true,
        skipLibCheck: true,
        noEmit: true,
        allowJs: true,
        checkJs: true,
      },
      include: ['**/*.ts', '**/*.cjs'],
    }),
  );
  const output = await promisify(execFile)(process.execPath, [tsc, '-p', dir, '--pretty', 'false'], {
    cwd: dir,
    maxBuffer: 16 * 1024 * 1024,
  }).then(
    ({ stdout }) => stdout,
    (error: { stdout?: string; stderr?: string; code?: number }) => {
      if (!error.stdout) throw new Error(`tsc failed to run (${error.code}): ${error.stderr}`);
      return error.stdout;
    },
  );
  const byFile = new Map(files.map((checked) => [path.resolve(checked.file), checked]));
  const diagnostics: Diagnostic[] = [];
  let current: Diagnostic | undefined; // the error the indented lines that follow belong to
  for (const line of output.split('\n')) {
    const match = /^(.+?)\((\d+),(\d+)\): error (TS\d+): (.*)$/.exec(line);
    if (match === null) {
      if (current !== undefined && line.trim() !== '') current.message += `\n    ${line.trim()}`;
      continue;
    }
    const [, file = '', lineNumber = '0', , code = '', message = ''] = match;
    const checked = byFile.get(path.resolve(dir, file));
    const blockLine = Number(lineNumber) - 1 - (checked?.offset ?? 0);
    const at =
      checked === undefined
        ? `${file}:${lineNumber}`
        : blockLine < 0
          ? `${where(checked.block)} (in the stubs before it)`
          : where(checked.block, blockLine);
    current = { at, code, message, checked };
    diagnostics.push(current);
  }
  // Filtered once complete: what JavaScript cannot say is often on an error's indented lines.
  return diagnostics.filter((d) => !d.checked?.javascript || javascriptCanSay(d.code, d.message));
}

/** A fresh directory for the checked files. */
export function checkDir(scratch: string): string {
  const dir = path.join(scratch, 'check');
  mkdirSync(dir, { recursive: true });
  return dir;
}
