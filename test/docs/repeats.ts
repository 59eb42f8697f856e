// Finds text repeated between Markdown files (or within one): a sentence or a table row of ten words or more
// that appears twice is text that will drift apart when one copy is edited. Link to it instead.
import { prose } from './blocks.js';

/** A unit of prose: a paragraph, a list item (with its continuation lines) or a table row. */
export interface Unit {
  readonly doc: string;
  /** 1-based line where it starts. */
  readonly line: number;
  /** Its words, whitespace collapsed. */
  readonly text: string;
}

const LIST_ITEM = /^\s*(?:[-*+]|\d+[.)])\s+/;

/** The units of a Markdown text's prose (fenced blocks, headings and HTML comments left out). */
export function units(doc: string, text: string): Unit[] {
  const result: Unit[] = [];
  let current: { line: number; parts: string[] } | undefined;
  const flush = () => {
    if (current !== undefined) {
      result.push({ doc, line: current.line, text: current.parts.join(' ').replace(/\s+/g, ' ').trim() });
    }
    current = undefined;
  };
  const lines = prose(text);
  lines.forEach((line, index) => {
    const trimmed = line.trim();
    if (trimmed === '' || /^#{1,6}\s/.test(trimmed) || /^<!--.*-->$/.test(trimmed)) {
      flush();
      return;
    }
    if (trimmed.startsWith('|')) {
      flush();
      // A header row (the line after it is the |---| separator) names columns: tables may share it.
      const header = /^\|?\s*:?-{3,}/.test(lines[index + 1]?.trim() ?? '');
      if (!header) result.push({ doc, line: index + 1, text: trimmed.replace(/\s+/g, ' ') });
      return;
    }
    if (LIST_ITEM.test(line)) flush();
    current ??= { line: index + 1, parts: [] };
    current.parts.push(trimmed.replace(LIST_ITEM, ''));
  });
  flush();
  return result;
}

/** A unit's sentences (a table row is one), emphasis and code marks dropped. */
function sentences(unit: Unit): string[] {
  const text = unit.text.replace(/[*`]/g, '');
  return unit.text.startsWith('|') ? [text] : text.split(/(?<=[.:;])\s+(?=[A-Z])/);
}

/** Sentences and table rows of at least `minWords` words found more than once across `docs`, as messages. */
export function repeats(docs: readonly { doc: string; text: string }[], minWords = 10): string[] {
  const first = new Map<string, Unit>();
  const problems: string[] = [];
  for (const { doc, text } of docs) {
    for (const unit of units(doc, text)) {
      for (const sentence of sentences(unit)) {
        if (sentence.split(' ').length < minWords) continue;
        const earlier = first.get(sentence);
        if (earlier === undefined) first.set(sentence, unit);
        else {
          problems.push(
            `${unit.doc}:${unit.line} repeats ${earlier.doc}:${earlier.line}: "${sentence.slice(0, 80)}..."`,
          );
        }
      }
    }
  }
  return problems;
}
