/**
 * The index of every runnable block of the course: for each ```` ```sh run=… ```` block of
 * each lesson, in page order, its target terminal, code (as the Run button types it),
 * `expect=` regex and the lab it runs in. tests/integration/lessons.test.ts runs the blocks
 * from it, scripts/record-labs.ts records them, tests/site/ checks pages and recordings
 * against it, and the build (runBlockIndexIntegration, in astro.config.mjs) stops on a
 * block it cannot place.
 *
 * It parses the lessons with Sätteri, the parser the build uses, and reads `run=` and
 * `expect=` with the build's own parseRunMeta, so the index and the pages cannot disagree
 * about what a block is.
 *
 * Which lab a block belongs to follows src/lib/lab-boot.ts: the nearest `<Lab id>` before
 * it on the page, else the first one after it.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AstroIntegration } from 'astro';
import { type MdastNode, markdownToMdast, mdxToMdast } from 'satteri';
import { parse as parseYaml } from 'yaml';
import { loadLabs } from '../../labs/load.ts';
import type { LabDef } from '../../labs/schema.ts';
import { parseRunMeta, RunMetaError, rawMeta } from './run-blocks.ts';

/** One runnable block. */
export interface RunBlock {
  /** The lesson's page slug (its URL path without slashes), e.g. `03-a-container-is-a-process`. */
  lesson: string;
  /** Source file, relative to the project root (`content/03-….mdx`). */
  file: string;
  /** Line of the opening fence in `file`. */
  line: number;
  /** 1-based position among the lesson's runnable blocks. */
  order: number;
  /** Id of the `<Lab>` the block runs in. */
  lab: string;
  /** `run=`: a terminal name of that lab, or `both` (every terminal, in the lab's order). */
  target: string;
  /** What the Run button types (the block's text, trimmed), one line per Enter. */
  code: string;
  /** `expect=`: the regex (flag `m`) the output must match; undefined when the block has none. */
  expect: string | undefined;
  /**
   * Set when the block sits in a Starlight `<TabItem>`: the reader runs one tab of the set
   * (e.g. the cgroup version of their machine). `group` is the `<Tabs syncKey>` (or `''`),
   * `set` numbers the `<Tabs>` on the page from 1.
   */
  tab?: { group: string; label: string; set: number };
}

/** The blocks of one `<Lab>` of one lesson, in order: what one session runs. */
export interface LabBlock {
  lesson: string;
  lab: string;
  blocks: RunBlock[];
}

/** A lesson the index cannot be built from, with every problem found. */
export class RunBlockIndexError extends Error {}

type Node = MdastNode & {
  name?: string;
  lang?: string | null;
  meta?: string | null;
  value?: string;
  attributes?: { type: string; name?: string; value?: unknown }[];
  children?: Node[];
  position?: { start: { line: number; offset?: number } };
};

function attr(node: Node, name: string): string | undefined {
  const a = node.attributes?.find((x) => x.type === 'mdxJsxAttribute' && x.name === name);
  return typeof a?.value === 'string' ? a.value : undefined;
}

/** The slug Starlight gives a lesson file: its path under content/ without extension, or `slug:`. */
export function lessonSlug(path: string, frontmatter: Record<string, unknown> = {}): string {
  if (typeof frontmatter.slug === 'string') return frontmatter.slug.replace(/^\/|\/$/g, '');
  const id = path
    .split(sep)
    .join('/')
    .replace(/\.mdx?$/, '');
  return id === 'index' ? '' : id.replace(/\/index$/, '');
}

/**
 * The runnable blocks of one lesson (its Markdown or MDX source). Throws a
 * RunBlockIndexError listing every block that has a malformed meta or no `<Lab>` on the page.
 */
export function lessonRunBlocks(source: string, file: string, lesson: string): RunBlock[] {
  const tree = (file.endsWith('.md') ? markdownToMdast(source) : mdxToMdast(source)) as Node;
  const found: Omit<RunBlock, 'lab' | 'order'>[] = [];
  /** Index into `found` where each `<Lab>` appears, with its id. */
  const labs: { at: number; id: string; line: number }[] = [];
  const problems: string[] = [];
  let tabSets = 0;

  const walk = (node: Node, tab: RunBlock['tab'], tabs: { group: string; set: number } | undefined) => {
    const line = node.position?.start.line ?? 0;
    if (node.type === 'mdxJsxFlowElement' && node.name === 'Lab') {
      const id = attr(node, 'id');
      if (id) labs.push({ at: found.length, id, line });
      else problems.push(`${file}:${line}: <Lab> needs id="…" as a plain string`);
    }
    if (node.type === 'mdxJsxFlowElement' && node.name === 'Tabs') {
      tabs = { group: attr(node, 'syncKey') ?? '', set: ++tabSets };
    }
    if (node.type === 'mdxJsxFlowElement' && node.name === 'TabItem' && tabs) {
      tab = { group: tabs.group, label: attr(node, 'label') ?? '', set: tabs.set };
    }
    if (node.type === 'code') {
      const offset = node.position?.start.offset;
      const meta = (offset !== undefined ? rawMeta(source, offset) : undefined) ?? node.meta;
      try {
        const run = parseRunMeta(meta);
        if (run) {
          found.push({
            lesson,
            file,
            line,
            target: run.target,
            code: (node.value ?? '').trim(),
            expect: run.expect,
            ...(tab ? { tab } : {}),
          });
        }
      } catch (err) {
        if (!(err instanceof RunMetaError)) throw err;
        problems.push(`${file}:${line}: ${err.message}`);
      }
    }
    for (const child of node.children ?? []) walk(child, tab, tabs);
  };
  walk(tree, undefined, undefined);

  const blocks = found.map((b, i): RunBlock => {
    const before = labs.filter((l) => l.at <= i).at(-1);
    const lab = before ?? labs[0];
    if (!lab) problems.push(`${b.file}:${b.line}: run=${b.target} block, but no <Lab id="…"> on the page`);
    return { ...b, order: i + 1, lab: lab?.id ?? '' };
  });
  if (problems.length > 0) throw new RunBlockIndexError(problems.join('\n'));
  return blocks;
}

function frontmatterOf(source: string): Record<string, unknown> {
  const m = /^---\r?\n([\s\S]*?)\r?\n---\r?\n/.exec(source);
  if (!m) return {};
  const data: unknown = parseYaml(m[1] ?? '');
  return data && typeof data === 'object' ? (data as Record<string, unknown>) : {};
}

/** Lesson files as the content collection finds them (src/content.config.ts): no `_*`, no README. */
async function lessonFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!e.isFile() || !/\.mdx?$/.test(e.name) || e.name.startsWith('_') || e.name === 'README.md') continue;
    out.push(join(e.parentPath, e.name));
  }
  return out.sort();
}

/**
 * Every runnable block of the course, lesson by lesson in file order. With `labs`, also
 * checks that each block's lab exists and has the block's terminal (a problem otherwise).
 */
export async function runBlockIndex(
  opts: { root?: string; contentDir?: string; labs?: readonly LabDef[] } = {},
): Promise<RunBlock[]> {
  const root = opts.root ?? process.cwd();
  const dir = opts.contentDir ?? join(root, 'content');
  const all: RunBlock[] = [];
  const problems: string[] = [];
  for (const path of await lessonFiles(dir)) {
    const source = await readFile(path, 'utf8');
    const file = relative(root, path).split(sep).join('/');
    try {
      all.push(...lessonRunBlocks(source, file, lessonSlug(relative(dir, path), frontmatterOf(source))));
    } catch (err) {
      if (!(err instanceof RunBlockIndexError)) throw err;
      problems.push(err.message);
    }
  }
  if (opts.labs) problems.push(...labProblems(all, opts.labs));
  if (problems.length > 0) throw new RunBlockIndexError(problems.join('\n'));
  return all;
}

/** Blocks whose lab is unknown or lacks the block's terminal. */
export function labProblems(blocks: readonly RunBlock[], labs: readonly LabDef[]): string[] {
  const problems: string[] = [];
  for (const b of blocks) {
    const lab = labs.find((l) => l.id === b.lab);
    if (!lab) problems.push(`${b.file}:${b.line}: <Lab id="${b.lab}">: no such lab in labs/`);
    else if (b.target !== 'both' && !lab.terminals.some((t) => t.name === b.target))
      problems.push(
        `${b.file}:${b.line}: run=${b.target}, but lab "${b.lab}" has the terminals ${lab.terminals.map((t) => t.name).join(', ')}`,
      );
  }
  return problems;
}

/** The blocks grouped by lesson and lab, in order: one session each. */
export function labBlocks(blocks: readonly RunBlock[]): LabBlock[] {
  const out: LabBlock[] = [];
  for (const b of blocks) {
    const last = out.find((g) => g.lesson === b.lesson && g.lab === b.lab);
    if (last) last.blocks.push(b);
    else out.push({ lesson: b.lesson, lab: b.lab, blocks: [b] });
  }
  return out;
}

/**
 * Astro integration: builds the index when a build starts, so a runnable block that has
 * no lab, an unknown terminal or a malformed `expect=` stops the build with its file and line.
 */
export function runBlockIndexIntegration(): AstroIntegration {
  let root = process.cwd();
  return {
    name: 'container-labs-run-block-index',
    hooks: {
      'astro:config:done': ({ config }) => {
        root = fileURLToPath(config.root);
      },
      'astro:build:start': async ({ logger }) => {
        const blocks = await runBlockIndex({ root, labs: await loadLabs(join(root, 'labs')) });
        const missing = blocks.filter((b) => b.expect === undefined).length;
        logger.info(
          `${blocks.length} runnable blocks in ${labBlocks(blocks).length} lab blocks` +
            (missing > 0
              ? `; ${missing} without expect= (tests/integration/lessons.test.ts fails on them)`
              : ''),
        );
      },
    },
  };
}
