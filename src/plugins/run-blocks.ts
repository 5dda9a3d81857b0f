/**
 * Markdown plugin: runnable code blocks.
 *
 *     ```sh run=container expect="^\s*1\s.*httpd"
 *     ps -ef
 *     ```
 *
 * wraps the block in `<div class="run-block" data-run="container" data-run-code="ps -ef">`.
 * `run=` names a terminal of the lesson's lab (`container`, `host`, …), or is `both` for
 * every terminal. In the browser, src/lib/lab-boot.ts adds a Run button that types the
 * code plus Enter into that terminal of the nearest preceding `<Lab>`.
 *
 * `expect="<regex>"` is what the block's output must match (a JavaScript regular
 * expression without delimiters, flag `m`; `\"` stands for a quote; with `run=both`, the
 * output of each terminal must match). It is for tests/integration/lessons.test.ts and the
 * recorder (both read src/plugins/run-block-index.ts), never for readers: it leaves the
 * page with `run=`.
 *
 * Astro 7 renders Markdown and MDX with Sätteri, so this is a Sätteri mdast plugin (the
 * Markdown tree, before Expressive Code turns `<pre>` into its own block in the HTML
 * tree). `run=` and `expect=` are taken out of the meta so Expressive Code sees only its
 * own options and keeps its features (copy button, title, marks) for the rest.
 */
import type { MdastPluginInstance } from 'satteri';

const RUN_META = /(^|\s)run=(["']?)([a-z][a-z0-9-]{0,30})\2(?=\s|$)/;
/** `expect="…"`: the quoted text, `\x` pairs kept as they are (so `\"` cannot end it). */
const EXPECT_META = /(^|\s)expect="((?:[^"\\]|\\.)*)"(?=\s|$)/;

/** A malformed `run=` / `expect=` meta; the build stops with its message. */
export class RunMetaError extends Error {}

export interface RunMeta {
  /** The terminal the block runs in, or `both`. */
  target: string;
  /** The regular expression the output must match (source text, `\"` read as `"`); undefined if none. */
  expect: string | undefined;
  /** The meta without `run=` and `expect=`, for Expressive Code. */
  rest: string;
}

/** `meta` without the match `m`, the text on both sides joined by one space. */
function cut(meta: string, m: { index: number; 0: string }): string {
  return [meta.slice(0, m.index).trimEnd(), meta.slice(m.index + m[0].length).trimStart()]
    .filter(Boolean)
    .join(' ');
}

/**
 * The `run=` target and `expect=` regex of a code block's meta and the meta without them;
 * undefined for a plain block. Throws RunMetaError for a malformed one (a `run=` without a
 * terminal name, an `expect=` without `run=`, unquoted or unclosed, or not a valid regex).
 *
 * WARNING: pass the meta as written in the source (`rawMeta`), not the parsed tree's
 * `node.meta`: CommonMark removes the backslash before any punctuation in an info string,
 * so `\.` or `\(` in a regex would arrive as `.` or `(`, a different regex.
 */
export function parseRunMeta(meta: string | null | undefined): RunMeta | undefined {
  if (!meta) return undefined;
  const hasRun = /(^|\s)run=/.test(meta);
  const hasExpect = /(^|\s)expect=/.test(meta);
  if (!hasRun && !hasExpect) return undefined;
  const run = RUN_META.exec(meta);
  const target = run?.[3];
  if (!run || !target)
    throw new RunMetaError(
      hasRun
        ? `run= needs a terminal name (container, host, …) or "both", got: ${meta}`
        : `expect= belongs to a run= block, got: ${meta}`,
    );
  let rest = cut(meta, run);
  if (!hasExpect) return { target, expect: undefined, rest };
  const exp = EXPECT_META.exec(rest);
  if (!exp)
    throw new RunMetaError(
      `expect= needs a double-quoted regular expression (\\" for a quote), got: ${meta}`,
    );
  const expect = (exp[2] ?? '').replace(/\\(.)/g, (pair, c: string) => (c === '"' ? '"' : pair));
  rest = cut(rest, exp);
  if (/(^|\s)expect=/.test(rest)) throw new RunMetaError(`one expect= per block, got: ${meta}`);
  try {
    new RegExp(expect, 'm');
  } catch (err) {
    throw new RunMetaError(`expect= is not a valid regular expression (${(err as Error).message}): ${meta}`);
  }
  return { target, expect, rest };
}

/**
 * The meta (info string after the language) of the fenced code block starting at `offset`
 * in `source`, exactly as written; undefined if there is no fence there.
 */
export function rawMeta(source: string, offset: number): string | undefined {
  const end = source.indexOf('\n', offset);
  const line = source.slice(offset, end === -1 ? undefined : end);
  const m = /^[ \t>]*(`{3,}|~{3,})\s*\S+[ \t]+(.*?)\s*$/.exec(line);
  return m ? m[2] : undefined;
}

/**
 * CommonMark's reading of a backslash in an info string: `\` before ASCII punctuation is
 * dropped. Used to find a raw `expect="…"` in the parsed meta.
 */
function unescapeInfo(s: string): string {
  return s.replace(/\\([!-/:-@[-`{-~])/g, '$1');
}

export const runBlocksPlugin: MdastPluginInstance & { name: string } = {
  name: 'container-labs-run-blocks',
  options: { position: true },
  code(node, ctx) {
    const offset = node.position?.start.offset;
    const raw = (offset !== undefined ? rawMeta(ctx.source, offset) : undefined) ?? node.meta;
    let run: RunMeta | undefined;
    try {
      run = parseRunMeta(raw);
    } catch (err) {
      // ctx.report()'s diagnostics never reach Astro: throw, so the build stops and says where.
      const where = `${ctx.fileURL?.pathname ?? 'markdown'}:${node.position?.start.line ?? '?'}`;
      throw new RunMetaError(`${where}: ${(err as Error).message}`);
    }
    if (!run) return;
    // The parsed meta minus our two options, so Expressive Code gets its own options as
    // CommonMark read them (`title="a \"b\""` stays what it was).
    let meta = node.meta ?? '';
    const runToken = RUN_META.exec(meta);
    if (runToken) meta = cut(meta, runToken);
    const expectToken = run.expect === undefined ? undefined : EXPECT_META.exec(raw ?? '')?.[0].trim();
    if (expectToken) {
      const at = meta.indexOf(unescapeInfo(expectToken));
      if (at !== -1) meta = cut(meta, { index: at, 0: unescapeInfo(expectToken) });
    }
    ctx.setProperty(node, 'meta', meta === '' ? null : meta);
    // A paragraph renamed to <div> can hold block content (the pattern Starlight's asides use).
    ctx.wrapNode(node, {
      type: 'paragraph',
      data: {
        hName: 'div',
        hProperties: { class: 'run-block', 'data-run': run.target, 'data-run-code': node.value.trim() },
      },
      children: [],
    });
  },
};
