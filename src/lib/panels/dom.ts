/** A small element builder for the panels: text is always set as text, never parsed as HTML. */

type Child = Node | string | null | undefined | false;

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string | number | boolean | undefined> = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === false) continue;
    el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children) if (c !== null && c !== undefined && c !== false) el.append(c);
  return el;
}

/** Replaces the text of `el` only when it changed (no needless DOM mutations each second). */
export function setText(el: Element, text: string): void {
  if (el.textContent !== text) el.textContent = text;
}

/** A column of a panel table: its header's content, and whether it holds numbers (right-aligned). */
export interface Column {
  head: Child[];
  num?: boolean;
}

/**
 * A panel's data table in a scrollable region that keyboard users can focus: a caption
 * for screen readers, one header row (`scope=col`), and `body`.
 */
export function dataTable(opts: {
  class: string;
  caption: string;
  region: string;
  columns: Column[];
  body: HTMLTableSectionElement;
}): HTMLDivElement {
  const heads = opts.columns.map((c) =>
    h('th', { scope: 'col', class: c.num ? 'kv-num' : undefined }, ...c.head),
  );
  const table = h(
    'table',
    { class: `kv-table ${opts.class}` },
    h('caption', { class: 'sr-only' }, opts.caption),
    h('thead', {}, h('tr', {}, ...heads)),
    opts.body,
  );
  return h('div', { class: 'kv-scroll', role: 'region', 'aria-label': opts.region, tabindex: '0' }, table);
}

/** Visually hidden text for screen readers (lab.css: `.lab .sr-only`). */
export function srOnly(text: string): HTMLSpanElement {
  return h('span', { class: 'sr-only' }, text);
}

/** A "nothing here" cell: a dash on screen, "none" for screen readers. */
export function none(): DocumentFragment {
  const f = document.createDocumentFragment();
  f.append(h('span', { 'aria-hidden': 'true', class: 'kv-none' }, '—'), srOnly('none'));
  return f;
}
