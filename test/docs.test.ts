// Every fenced block of README.md, docs/*.md, CONTRIBUTING.md and CHANGELOG.md is checked or run, so that
// none can silently rot:
// js and ts blocks are type-checked in one tsc run (free names declared by stubs), the blocks marked
// `<!-- docs-test: run NAME -->` are also run as pasted (test/docs/runs.ts says how), sh blocks may only hold
// commands that are checked (`npm run` of a real script, `npm install` of a meant package, curl lines that are
// the requests of a run), and a block in any other language fails. The blocks import `koa-raincheck` as users
// do: the scratch files sit inside this package, so the name resolves to it through its `exports` (dist/).
// Links must work where the docs are read: the Markdown the tarball ships links only to what it ships (see
// test/docs/links.ts), and no text is repeated between files.
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmdirSync,
  rmSync,
  statSync,
} from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { allBlocks, type Block, docFiles, prose, root, where } from './docs/blocks.js';
import { checkLinks, type LinkContext, packedFiles, repositoryAddress } from './docs/links.js';
import { repeats } from './docs/repeats.js';
import { type RunResult, runFile, writeRunnable } from './docs/run-block.js';
import { type HttpRequest, runs } from './docs/runs.js';
import { type CurlRequest, checkInlineNpmRuns, checkNpm, checkShell } from './docs/shell.js';
import { type CheckedFile, checkDir, type Diagnostic, typecheck, writeChecked } from './docs/typecheck.js';
import { gatedOn, runtimeLabel } from './runtime.js';

const markerProblems: string[] = [];
const blocks = allBlocks(markerProblems);
const isCode = (block: Block) => ['js', 'javascript', 'ts', 'typescript'].includes(block.lang);
const isShell = (block: Block) => ['sh', 'bash', 'shell'].includes(block.lang);
const markedRun = (name: string) => blocks.find((b) => b.marker?.kind === 'run' && b.marker.name === name);

/** Gitignored; one directory per test run inside it, so that two runs at once do not meet. */
const scratchRoot = path.join(root, '.docs-check');

/** The blocks import dist/, as users do: it must have been built from the current src/ (dist/cjs/ has the code). */
function assertBuilt(): void {
  const stale = readdirSync(path.join(root, 'src'), { recursive: true })
    .map(String)
    .filter((file) => file.endsWith('.ts') && !file.endsWith('.d.ts'))
    .filter((file) => {
      const built = path.join(root, 'dist', 'cjs', file.replace(/\.ts$/, '.js'));
      return !existsSync(built) || statSync(built).mtimeMs < statSync(path.join(root, 'src', file)).mtimeMs;
    });
  if (stale.length > 0) {
    throw new Error(
      `dist/ is older than src/ (${stale.join(', ')}): run \`npm run build\` first (\`npm test\` does); ` +
        'the doc blocks import koa-raincheck from dist/, as users do',
    );
  }
}

const format = (d: Diagnostic) => `${d.at}: ${d.code}: ${d.message}`;

/** The requests a run gets: from the curl lines of its requests block, else its own. */
function requestsOf(name: string): HttpRequest[] {
  const block = blocks.find((b) => b.marker?.kind === 'requests' && b.marker.name === name);
  if (block === undefined) return [...(runs[name]?.requests ?? [])];
  const { requests } = checkShell(block.code, () => where(block), true);
  return requests.map((request: CurlRequest) => {
    const url = new URL(request.url.includes('://') ? request.url : `http://${request.url}`);
    return {
      method: request.method,
      path: `${url.pathname}${url.search}`,
      headers: request.headers,
      ...(request.body === undefined ? {} : { body: request.body }),
    };
  });
}

describe('README and docs: every code block is checked or run', function () {
  this.timeout(60_000);
  let scratch = '';
  /** The runs, all started at once (child processes that mostly wait, beside tsc), each test awaiting its own. */
  const started = new Map<string, Promise<RunResult>>();

  before(() => {
    assertBuilt();
    mkdirSync(scratchRoot, { recursive: true });
    scratch = mkdtempSync(path.join(scratchRoot, 'run-'));
    for (const [name, run] of Object.entries(runs)) {
      const block = markedRun(name);
      if (block === undefined) continue;
      const result = runFile(writeRunnable(scratch, name, block, run), run, requestsOf(name), 20_000);
      result.catch(() => {}); // awaited by its test; not unhandled meanwhile
      started.set(name, result);
    }
  });

  after(() => {
    if (scratch !== '') rmSync(scratch, { recursive: true, force: true });
    try {
      rmdirSync(scratchRoot); // only if no other run is using it
    } catch {}
  });

  it('has only js, ts and sh blocks, and a block for every marker and every run', () => {
    const problems = [...markerProblems];
    for (const block of blocks) {
      if (!isCode(block) && !isShell(block)) {
        problems.push(
          `${where(block)}: a \`${block.lang || '(no language)'}\` block: neither checked nor run`,
        );
      }
      const marker = block.marker;
      if (marker?.kind === 'run' && (!isCode(block) || runs[marker.name] === undefined)) {
        problems.push(`${where(block)}: run ${marker.name}: not a js block with a spec in test/docs/runs.ts`);
      }
      if (marker?.kind === 'requests' && (!isShell(block) || markedRun(marker.name) === undefined)) {
        problems.push(`${where(block)}: requests ${marker.name}: not an sh block for a marked run`);
      }
    }
    for (const name of Object.keys(runs)) {
      if (markedRun(name) === undefined)
        problems.push(`run ${name}: no block marked <!-- docs-test: run ${name} -->`);
    }
    expect(problems).to.deep.equal([]);
    expect(blocks.filter(isCode).length, 'js and ts blocks found').to.be.greaterThan(10);
  });

  it('type-checks every js and ts block in one tsc run, and fails a copy with a renamed function', async () => {
    const dir = checkDir(scratch);
    const files: CheckedFile[] = blocks.filter(isCode).map((block) => writeChecked(dir, block));
    // The canary: the quick start with `raincheck` renamed, which must not type-check.
    const quickStart = markedRun('quick-start') as Block;
    const renamed = quickStart.code
      .replace('{ raincheck }', '{ rainCheck }')
      .replace('raincheck()', 'rainCheck()');
    expect(renamed).to.not.equal(quickStart.code);
    const canary = writeChecked(dir, { ...quickStart, code: renamed }, 'canary');
    const diagnostics = await typecheck(dir, [...files, canary]);

    expect(diagnostics.filter((d) => d.checked !== canary).map(format)).to.deep.equal([]);
    // The canary's error is reported at the README line of the renamed import.
    const importLine = quickStart.code.split('\n').findIndex((line) => line.includes('{ raincheck }'));
    expect(diagnostics.filter((d) => d.checked === canary).map((d) => d.at)).to.include(
      where(quickStart, importLine),
    );
  });

  it('names only scripts of package.json in `npm run`, and only meant packages in `npm install`', () => {
    const problems: string[] = [];
    for (const block of blocks.filter(isShell)) {
      const curl = block.marker?.kind === 'requests';
      problems.push(...checkShell(block.code, (line) => where(block, line), curl).problems);
    }
    for (const doc of docFiles()) {
      problems.push(...checkInlineNpmRuns(doc, prose(readFileSync(path.join(root, doc), 'utf8'))));
    }
    expect(problems).to.deep.equal([]);
    // And the checks can fail.
    expect(checkNpm(['run', 'exmaple'])).to.be.a('string');
    expect(checkNpm(['install', 'koa-raincheck', 'left-pad'])).to.be.a('string');
    expect(checkShell('make test\n', () => 'x', false).problems).to.have.length(1);
  });

  describe('links work on GitHub, on the registry page and in node_modules', () => {
    const manifest = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));
    let context: LinkContext;

    before(async function () {
      this.timeout(30_000);
      context = { packed: await packedFiles(), repository: repositoryAddress(manifest.repository) };
    });

    it("names the repository in package.json's repository, homepage and bugs", () => {
      expect(manifest.repository).to.deep.equal({ type: 'git', url: `git+${context.repository}.git` });
      expect(context.repository).to.match(/^https:\/\/github\.com\/[\w.-]+\/[\w.-]+$/);
      expect(manifest.homepage).to.equal(`${context.repository}#readme`);
      expect(manifest.bugs).to.equal(`${context.repository}/issues`);
    });

    it('ships README.md, CHANGELOG.md and every page of docs/ (and not CONTRIBUTING.md)', () => {
      const pages = docFiles().filter((doc) => doc !== 'CONTRIBUTING.md');
      expect(pages.filter((doc) => !context.packed.has(doc))).to.deep.equal([]);
      expect(context.packed.has('CONTRIBUTING.md')).to.equal(false);
    });

    it('links, from every Markdown file the tarball ships, only to files and headings it ships', () => {
      const shipped = [...context.packed].filter((file) => file.endsWith('.md'));
      const docs = [...new Set([...docFiles(), ...shipped])];
      const problems = docs.flatMap((doc) =>
        checkLinks(doc, readFileSync(path.join(root, doc), 'utf8'), context),
      );
      expect(problems).to.deep.equal([]);
    });

    it('finds a link to an unshipped file, a missing heading, and a repository URL to a shipped file', () => {
      const url = `${context.repository}/blob/main`;
      const text = [
        '[a script](bench/run.ts), [a heading](docs/semantics.md#no-such-heading), [docs](docs/faq.md),',
        `[by URL](${url}/docs/faq.md), [nothing](${url}/no-such-file.md), [contributing](${url}/CONTRIBUTING.md)`,
      ].join('\n');
      expect(
        checkLinks('README.md', text, context).map((p) => p.replace(/^.*?: link to (\S+): .*$/, '$1')),
      ).to.deep.equal([
        'bench/run.ts',
        'docs/semantics.md#no-such-heading',
        `${url}/docs/faq.md`,
        `${url}/no-such-file.md`,
      ]);
      // A file the tarball does not ship may link to any file of the repository.
      expect(checkLinks('CONTRIBUTING.md', '[the runs](test/docs/runs.ts)', context)).to.deep.equal([]);
    });
  });

  it('repeats no sentence or table row between the README, docs/ and CONTRIBUTING.md', () => {
    const docs = docFiles()
      .filter((doc) => doc !== 'CHANGELOG.md')
      .map((doc) => ({ doc, text: readFileSync(path.join(root, doc), 'utf8') }));
    expect(repeats(docs)).to.deep.equal([]);
    // And the check can fail.
    const twice = 'A job runs in the same process, from memory, right after the response has been sent.';
    expect(
      repeats([
        { doc: 'a.md', text: `${twice}\n` },
        { doc: 'b.md', text: `- ${twice}\n` },
      ]),
    ).to.have.length(1);
  });

  // In a child of the runtime the suite runs on (test/docs/run-block.ts), named in the title.
  describe(`runs the blocks that make an app or a script, as pasted, on ${runtimeLabel}`, () => {
    for (const [name, run] of Object.entries(runs)) {
      const block = markedRun(name);
      it(`${name}${block ? ` (${where(block)})` : ''}`, async () => {
        const running = started.get(name);
        if (running === undefined) throw new Error(`no block marked <!-- docs-test: run ${name} -->`);
        const result = await running;
        const output = `\nstdout:\n${result.stdout}\nstderr:\n${result.stderr}`;
        const listens = run.requests !== undefined || run.stop !== undefined || requestsOf(name).length > 0;
        if (!listens || run.stop?.exitCode !== undefined) {
          expect(result.exitCode, `exit code${output}`).to.equal(run.stop?.exitCode ?? 0);
        }
        expect(
          result.responses.map((r) => r.status),
          `statuses${output}`,
        ).to.deep.equal(run.statuses ?? []);
        const gated = Object.entries(run.printsGatedOn ?? {}).some(([on, reason]) =>
          gatedOn(on as 'bun' | 'deno', `what ${name} prints, not checked: ${reason}`),
        );
        if (gated) return;
        for (const line of [...(run.prints ?? []), ...(run.after ?? [])]) {
          expect(result.stdout.split(line).length - 1, `"${line}" printed once${output}`).to.equal(1);
        }
        for (const line of run.after ?? []) {
          expect(result.stdout.indexOf(line), `"${line}" after the response${output}`).to.be.at.least(
            result.lastResponseEnd,
          );
        }
      });
    }
  });
});
