// Checks the links of the Markdown files against what users get. A relative link in a file the tarball
// ships must point to a file the tarball ships (and its #anchor to a heading there, slugged as GitHub does),
// so that it works in node_modules as on GitHub; the registry page resolves relative links against
// package.json's `repository`. A file the tarball does not ship (CONTRIBUTING.md) may link to any file of the
// repository. A file that does not ship is linked by its URL in the repository, whose path must exist; a
// URL to a file that ships is refused: a relative link works offline too.
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { prose, root } from './blocks.js';

/** GitHub's anchor for a heading's text: lower case, punctuation dropped, spaces to hyphens. */
export function slug(heading: string): string {
  const text = heading
    .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1') // a link's text
    .replace(/[`*]/g, '');
  return text
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-');
}

/** The anchors of a Markdown file's headings, with GitHub's -1, -2 for repeated ones. */
export function anchors(text: string): Set<string> {
  const seen = new Map<string, number>();
  const result = new Set<string>();
  for (const line of prose(text)) {
    const heading = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (heading === null) continue;
    const base = slug(heading[1] as string);
    const count = seen.get(base) ?? 0;
    seen.set(base, count + 1);
    result.add(count === 0 ? base : `${base}-${count}`);
  }
  return result;
}

/** What links are checked against. */
export interface LinkContext {
  /** The files of the tarball, as `npm pack --dry-run` lists them, relative to the root (`/`-separated). */
  readonly packed: ReadonlySet<string>;
  /** The repository's address, from package.json's `repository`: `https://github.com/owner/name`. */
  readonly repository: string;
}

/** The repository's web address from a `repository` field (`git+https://github.com/o/n.git` or `{ url }`). */
export function repositoryAddress(repository: unknown): string {
  const url = typeof repository === 'string' ? repository : (repository as { url?: unknown })?.url;
  if (typeof url !== 'string') throw new Error('package.json has no repository url');
  return url.replace(/^git\+/, '').replace(/\.git$/, '');
}

/** The files `npm pack` would put in the tarball, without running `prepare` (dist/ must be built already). */
export async function packedFiles(): Promise<Set<string>> {
  const { stdout } = await promisify(execFile)(
    'npm',
    ['pack', '--dry-run', '--json', '--ignore-scripts', '--loglevel=error'],
    { cwd: root, maxBuffer: 16 * 1024 * 1024 },
  );
  const [pack] = JSON.parse(stdout) as [{ files: { path: string }[] }];
  return new Set(pack.files.map((file) => file.path.split(path.sep).join('/')));
}

/** The link targets of a Markdown text's prose, with their 0-based line: inline links and definitions. */
function targets(text: string): { target: string; index: number }[] {
  const found: { target: string; index: number }[] = [];
  prose(text).forEach((line, index) => {
    const withoutCode = line.replace(/`[^`]*`/g, (code) => ' '.repeat(code.length));
    for (const match of withoutCode.matchAll(/\]\(<?([^)\s>]+)>?(?:\s+"[^"]*")?\)/g)) {
      found.push({ target: match[1] as string, index });
    }
    const definition = /^\s{0,3}\[[^\]]+\]:\s*<?([^\s>]+)>?/.exec(withoutCode);
    if (definition !== null) found.push({ target: definition[1] as string, index });
  });
  return found;
}

/** Whether `file` (relative to the root) is in the tarball, as a file or as a directory holding some. */
function ships(packed: ReadonlySet<string>, file: string): boolean {
  const bare = file.replace(/\/$/, '');
  return packed.has(bare) || [...packed].some((entry) => entry.startsWith(`${bare}/`));
}

/** Problems of the links of `doc` (relative to the root), whose text is `text`. */
export function checkLinks(doc: string, text: string, context: LinkContext): string[] {
  const problems: string[] = [];
  const shipped = context.packed.has(doc);
  const inRepository = new RegExp(
    `^${context.repository.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/(?:blob|tree)/[^/]+/([^#?]+)(?:#(.*))?$`,
  );
  for (const { target, index } of targets(text)) {
    const at = `${doc}:${index + 1}: link to ${target}`;
    const byUrl = inRepository.exec(target);
    let file: string;
    let anchor: string | undefined;
    if (byUrl !== null) {
      file = decodeURIComponent(byUrl[1] as string).replace(/\/$/, '');
      anchor = byUrl[2];
      if (!existsSync(path.join(root, file))) {
        problems.push(`${at}: no such file in the repository`);
        continue;
      }
      if (shipped && ships(context.packed, file)) {
        problems.push(
          `${at}: ${file} is in the tarball: link it relatively, so that it works in node_modules`,
        );
        continue;
      }
    } else if (/^[a-z][a-z+.-]*:/i.test(target) || target.startsWith('//')) {
      continue; // https:, mailto: elsewhere
    } else {
      const [relative = '', hash] = target.split('#');
      anchor = hash;
      file =
        relative === ''
          ? doc
          : path.posix.normalize(path.posix.join(path.posix.dirname(doc), decodeURIComponent(relative)));
      if (file.startsWith('../') || path.posix.isAbsolute(file)) {
        problems.push(`${at}: outside the package`);
        continue;
      }
      if (shipped && !ships(context.packed, file)) {
        problems.push(
          `${at}: ${file} is not in the tarball (npm pack --dry-run): dead in node_modules; ship it, or link its URL in the repository`,
        );
        continue;
      }
      if (!existsSync(path.join(root, file))) {
        problems.push(`${at}: no such file`);
        continue;
      }
    }
    if (anchor !== undefined && file.endsWith('.md') && statSync(path.join(root, file)).isFile()) {
      const headings = anchors(file === doc ? text : readFileSync(path.join(root, file), 'utf8'));
      if (!headings.has(anchor)) problems.push(`${at}: no such heading in ${file}`);
    }
  }
  return problems;
}
