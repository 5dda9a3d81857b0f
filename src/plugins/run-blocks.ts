/**
 * Markdown plugin: runnable code blocks.
 *
 *     ```sh run=container
 *     ps -ef
 *     ```
 *
 * wraps the block in `<div class="run-block" data-run="container" data-run-code="ps -ef">`.
 * `run=` names a terminal of the lesson's lab (`container`, `host`, …), or is `both` for
 * every terminal. In the browser, src/lib/lab-boot.ts adds a Run button that types the
 * code plus Enter into that terminal of the nearest preceding `<Lab>`.
 *
 * Astro 7 renders Markdown and MDX with Sätteri, so this is a Sätteri mdast plugin (the
 * Markdown tree, before Expressive Code turns `<pre>` into its own block in the HTML
 * tree). `run=` is taken out of the meta so Expressive Code sees only its own options and
 * keeps its features (copy button, title, marks) for the rest.
 */
import type { MdastPluginInstance } from 'satteri';

const RUN_META = /(^|\s)run=(["']?)([a-z][a-z0-9-]{0,30})\2(?=\s|$)/;

/** The `run=` target of a code block's meta and the meta without it; undefined if none. */
export function parseRunMeta(meta: string | null | undefined): { target: string; rest: string } | undefined {
  if (!meta) return undefined;
  const m = RUN_META.exec(meta);
  const target = m?.[3];
  if (!m || !target) return undefined;
  const rest = [meta.slice(0, m.index).trimEnd(), meta.slice(m.index + m[0].length).trimStart()]
    .filter(Boolean)
    .join(' ');
  return { target, rest };
}

export const runBlocksPlugin: MdastPluginInstance & { name: string } = {
  name: 'container-labs-run-blocks',
  code(node, ctx) {
    if (node.meta && /(^|\s)run=/.test(node.meta) && !RUN_META.test(node.meta)) {
      ctx.report({
        node,
        severity: 'error',
        message: `run= needs a terminal name (container, host, …) or "both", got: ${node.meta}`,
      });
      return;
    }
    const run = parseRunMeta(node.meta);
    if (!run) return;
    ctx.setProperty(node, 'meta', run.rest === '' ? null : run.rest);
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
