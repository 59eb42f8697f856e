// Checks the relative links of the README and docs: the file exists, and so does the heading an anchor names
// (slugged as GitHub does), so that moving a section cannot leave a link behind.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
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

/** Problems of the relative links (`[text](target)`) in the prose of `doc`. */
export function checkLinks(doc: string): string[] {
  const text = readFileSync(path.join(root, doc), 'utf8');
  const problems: string[] = [];
  prose(text).forEach((line, index) => {
    const withoutCode = line.replace(/`[^`]*`/g, (code) => ' '.repeat(code.length));
    for (const match of withoutCode.matchAll(/\]\(([^)\s]+)\)/g)) {
      const target = match[1] as string;
      if (/^[a-z][a-z+.-]*:/i.test(target)) continue; // https:, mailto:
      const [file = '', anchor] = target.split('#');
      const resolved =
        file === '' ? path.join(root, doc) : path.resolve(path.dirname(path.join(root, doc)), file);
      const at = `${doc}:${index + 1}: link to ${target}`;
      if (!existsSync(resolved)) {
        problems.push(`${at}: no such file`);
        continue;
      }
      if (anchor !== undefined && !anchors(readFileSync(resolved, 'utf8')).has(anchor)) {
        problems.push(`${at}: no such heading in ${path.relative(root, resolved)}`);
      }
    }
  });
  return problems;
}
