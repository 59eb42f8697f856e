// Reads the fenced code blocks of the Markdown files (README, docs/, CONTRIBUTING, CHANGELOG), with where they
// are and the marker before them.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

/** A marker in an HTML comment right before a block: `<!-- docs-test: run NAME -->`. */
export interface Marker {
  /** `run`: the block is run by the spec NAME; `requests`: its curl lines are the requests sent to run NAME. */
  readonly kind: 'run' | 'requests';
  readonly name: string;
}

export interface Block {
  /** The Markdown file, relative to the repository root. */
  readonly doc: string;
  /** The line of the block's first code line, 1-based. */
  readonly line: number;
  /** The fence's info string, e.g. `js`. */
  readonly lang: string;
  readonly code: string;
  readonly marker: Marker | undefined;
}

export const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', '..');

/** The Markdown files of the repository's top level that the docs test reads besides README.md and docs/. */
const topLevel = ['CONTRIBUTING.md', 'CHANGELOG.md'];

/** README.md, every Markdown file under docs/, CONTRIBUTING.md and CHANGELOG.md, relative to the root. */
export function docFiles(): string[] {
  const docs = readdirSync(path.join(root, 'docs'))
    .filter((name) => name.endsWith('.md'))
    .sort()
    .map((name) => `docs/${name}`);
  return ['README.md', ...docs, ...topLevel.filter((name) => existsSync(path.join(root, name)))];
}

const FENCE = /^(\s*)(`{3,}|~{3,})\s*([^\s`]*)/;
const MARKER = /^<!--\s*docs-test:\s*(run|requests)\s+([\w-]+)\s*-->$/;
const ANY_MARKER = /docs-test:/;

/** Whether `line` closes a block opened with `fence`: the same character, at least as many times. */
function closes(line: string, fence: string): boolean {
  const trimmed = line.trim();
  return trimmed.length >= fence.length && [...trimmed].every((char) => char === fence[0]);
}

/** The fenced blocks of one Markdown text; `problems` gets malformed markers and unclosed fences. */
export function extractBlocks(doc: string, text: string, problems: string[] = []): Block[] {
  const lines = text.split('\n');
  const blocks: Block[] = [];
  let lastNonBlank = '';
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] as string;
    const open = FENCE.exec(line);
    if (open === null) {
      if (line.trim().startsWith('<!--') && ANY_MARKER.test(line) && !MARKER.test(line.trim())) {
        problems.push(`${doc}:${i + 1}: malformed marker (expected <!-- docs-test: run|requests NAME -->)`);
      }
      if (line.trim() !== '') lastNonBlank = line.trim();
      continue;
    }
    const [, indent = '', fence = '', lang = ''] = open;
    const start = i + 1;
    const body: string[] = [];
    for (i++; i < lines.length; i++) {
      const inner = lines[i] as string;
      if (closes(inner, fence)) break;
      body.push(inner.startsWith(indent) ? inner.slice(indent.length) : inner.trimStart());
    }
    if (i >= lines.length) problems.push(`${doc}:${start}: a fence that is never closed`);
    const found = MARKER.exec(lastNonBlank);
    const marker = found ? { kind: found[1] as Marker['kind'], name: found[2] as string } : undefined;
    blocks.push({ doc, line: start + 1, lang, code: `${body.join('\n')}\n`, marker });
    lastNonBlank = '';
  }
  return blocks;
}

/** Every block of the README and docs. */
export function allBlocks(problems: string[] = []): Block[] {
  return docFiles().flatMap((doc) =>
    extractBlocks(doc, readFileSync(path.join(root, doc), 'utf8'), problems),
  );
}

/** Where a block is, for messages: `README.md:58`. */
export function where(block: Block, offset = 0): string {
  return `${block.doc}:${block.line + offset}`;
}

/** The text of a Markdown file outside its fenced blocks, line by line (fenced lines blanked). */
export function prose(text: string): string[] {
  const lines = text.split('\n');
  let fence: string | undefined;
  return lines.map((line) => {
    const open = FENCE.exec(line);
    if (fence === undefined && open !== null) {
      fence = open[2];
      return '';
    }
    if (fence !== undefined) {
      if (closes(line, fence)) fence = undefined;
      return '';
    }
    return line;
  });
}
