/**
 * Offline link checker for a built static site. Reads every HTML page (and CSS file) in a dist
 * folder and resolves each reference the way a browser would, against the page's URL on a host
 * where the site is mounted at `base`:
 *
 * - internal references (href/src/srcset/poster/…, CSS url(), and data-* attributes that hold a
 *   path to a file, like a lab's data-recording) on the same origin, or on the configured `site`
 *   origin, must map to a file of the build: `/a/` → `a/index.html`, `/a` → `a` (file), `a/index.html` (host redirect) or `a.html`;
 * - they must stay inside `base` (a link to `/x` on a site deployed under `/sub/` leaves the site);
 * - `#fragment`s must name an element id (or `<a name>`) in the target page;
 * - external references are collected, never fetched.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { attr, describe, type Element, elements, type Page, parse } from './site.ts';

export interface LinkProblem {
  page: string;
  element: string;
  ref: string;
  /** The resolved URL's path + fragment (empty if the reference is not a valid URL). */
  target: string;
  reason: string;
}

export interface LinkReport {
  checked: number;
  internal: number;
  problems: LinkProblem[];
  /** External URL → pages that reference it. */
  external: Map<string, Set<string>>;
}

/** Attributes holding one URL, by element (`*` = any element). */
const URL_ATTRS: Array<[string, string]> = [
  ['a', 'href'],
  ['area', 'href'],
  ['link', 'href'],
  ['use', 'href'],
  ['use', 'xlink:href'],
  ['image', 'href'],
  ['script', 'src'],
  ['img', 'src'],
  ['iframe', 'src'],
  ['embed', 'src'],
  ['source', 'src'],
  ['track', 'src'],
  ['video', 'src'],
  ['video', 'poster'],
  ['audio', 'src'],
  ['input', 'src'],
  ['object', 'data'],
  ['form', 'action'],
  ['blockquote', 'cite'],
  ['q', 'cite'],
];

const SKIP_SCHEMES = new Set(['mailto:', 'tel:', 'data:', 'blob:', 'about:', 'sms:']);

function normaliseBase(base: string): string {
  let b = base.startsWith('/') ? base : `/${base}`;
  if (!b.endsWith('/')) b += '/';
  return b;
}

export function checkLinks(
  distDir: string,
  pages: Page[],
  opts: { base?: string; site?: string } = {},
): LinkReport {
  const dist = path.resolve(distDir);
  const base = normaliseBase(opts.base ?? '/');
  const origin = 'http://127.0.0.1:1';
  const siteOrigin = opts.site ? new URL(opts.site).origin : undefined;
  const problems: LinkProblem[] = [];
  const external = new Map<string, Set<string>>();
  const idCache = new Map<string, Set<string>>();
  let checked = 0;
  let internal = 0;

  const idsOf = (file: string): Set<string> => {
    let ids = idCache.get(file);
    if (!ids) {
      ids = new Set<string>();
      for (const el of elements(parse(readFileSync(file, 'utf8')))) {
        const id = attr(el, 'id');
        if (id !== undefined) ids.add(id);
        if (el.tagName === 'a' && attr(el, 'name')) ids.add(attr(el, 'name') as string);
      }
      idCache.set(file, ids);
    }
    return ids;
  };

  /** The file a site path resolves to on a plain static host, or a reason it does not. */
  const resolveFile = (pathname: string): { file?: string; reason?: string } => {
    if (!pathname.startsWith(base)) return { reason: `outside the site base ${base}` };
    let rel: string;
    try {
      rel = decodeURIComponent(pathname.slice(base.length));
    } catch {
      return { reason: 'malformed percent-encoding' };
    }
    const full = path.join(dist, rel);
    if (full !== dist && !full.startsWith(dist + path.sep)) return { reason: 'escapes the site root' };
    if (rel === '' || rel.endsWith('/')) {
      const index = path.join(full, 'index.html');
      return existsSync(index)
        ? { file: index }
        : { reason: `no ${path.relative(dist, index)} in the build` };
    }
    if (existsSync(full) && statSync(full).isFile()) return { file: full };
    if (existsSync(path.join(full, 'index.html'))) return { file: path.join(full, 'index.html') };
    if (existsSync(`${full}.html`)) return { file: `${full}.html` };
    return { reason: `no file ${rel} in the build` };
  };

  const check = (page: Page, pageUrl: URL, el: Element | undefined, raw: string, what: string) => {
    const ref = raw.trim();
    if (ref === '') return;
    checked++;
    let url: URL;
    try {
      url = new URL(ref, pageUrl);
    } catch {
      problems.push({
        page: page.path,
        element: el ? describe(el) : what,
        ref: raw,
        target: '',
        reason: 'not a valid URL',
      });
      return;
    }
    const target = url.pathname + url.hash;
    const problem = (reason: string) =>
      problems.push({ page: page.path, element: el ? describe(el) : what, ref: raw, target, reason });
    if (url.protocol === 'javascript:') {
      problem('javascript: URL');
      return;
    }
    if (SKIP_SCHEMES.has(url.protocol)) return;
    const isSite = url.origin === origin || (siteOrigin !== undefined && url.origin === siteOrigin);
    if (!isSite) {
      const key = url.href;
      if (!external.has(key)) external.set(key, new Set());
      external.get(key)?.add(page.path);
      return;
    }
    internal++;
    const { file, reason } = resolveFile(url.pathname);
    if (!file) {
      problem(reason ?? 'unresolved');
      return;
    }
    const fragment = url.hash.slice(1);
    if (fragment && file.endsWith('.html')) {
      let id: string;
      try {
        id = decodeURIComponent(fragment);
      } catch {
        id = fragment;
      }
      if (!idsOf(file).has(id)) {
        problem(`no element with id="${id}" in ${path.relative(dist, file)}`);
      }
    }
  };

  for (const page of pages) {
    const pageUrl = new URL(page.path, origin);
    const doc = parse(readFileSync(page.abs, 'utf8'));
    let docBase = pageUrl;
    for (const el of elements(doc)) {
      if (el.tagName === 'base' && attr(el, 'href')) docBase = new URL(attr(el, 'href') as string, pageUrl);
    }
    for (const el of elements(doc)) {
      for (const [tag, name] of URL_ATTRS) {
        if (el.tagName !== tag) continue;
        const value = attr(el, name);
        if (value === undefined) continue;
        // <link rel="canonical"> to the configured `site` is absolute: checked as internal — except on
        // the 404 page, which is served at every unknown URL (Starlight gives it `/404/`).
        const rel = (attr(el, 'rel') ?? '').toLowerCase();
        if (page.kind === '404' && tag === 'link' && /\b(canonical|alternate)\b/.test(rel)) continue;
        check(page, docBase, el, value, `${tag}[${name}]`);
      }
      for (const name of ['srcset', 'imagesrcset']) {
        const value = attr(el, name);
        if (!value) continue;
        for (const candidate of value.split(',')) {
          const u = candidate.trim().split(/\s+/)[0];
          if (u) check(page, docBase, el, u, `${el.tagName}[${name}]`);
        }
      }
      if (el.tagName === 'meta' && (attr(el, 'http-equiv') ?? '').toLowerCase() === 'refresh') {
        const m = /url=(.+)$/i.exec(attr(el, 'content') ?? '');
        if (m?.[1]) check(page, docBase, el, m[1].replace(/^['"]|['"]$/g, ''), 'meta[refresh]');
      }
      // data-* attributes holding a path to a file of the site (e.g. a lab's data-recording="/recordings/x.cast").
      for (const a of el.attrs) {
        if (a.name.startsWith('data-') && /^\.{0,2}\/[^\s"'<>{}]*\.[a-z0-9]{1,8}$/i.test(a.value)) {
          check(page, docBase, el, a.value, `${el.tagName}[${a.name}]`);
        }
      }
      const style = attr(el, 'style');
      if (style) {
        for (const m of style.matchAll(/url\(\s*["']?([^"')]+)["']?\s*\)/g)) {
          if (m[1]) check(page, docBase, el, m[1], `${el.tagName}[style] url()`);
        }
      }
    }
  }

  // CSS files: url() and @import, resolved against the stylesheet's own URL.
  const walk = (dir: string): string[] =>
    readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
      e.isDirectory()
        ? walk(path.join(dir, e.name))
        : e.name.endsWith('.css')
          ? [path.join(dir, e.name)]
          : [],
    );
  for (const css of walk(dist)) {
    const rel = path.relative(dist, css).split(path.sep).join('/');
    const cssPage: Page = { file: rel, abs: css, path: base + rel, kind: 'lesson' };
    const cssUrl = new URL(cssPage.path, origin);
    const source = readFileSync(css, 'utf8').replace(/\/\*[\s\S]*?\*\//g, '');
    for (const m of source.matchAll(/url\(\s*["']?([^"')]+)["']?\s*\)|@import\s+["']([^"']+)["']/g)) {
      const ref = m[1] ?? m[2];
      if (ref && !ref.startsWith('#')) check(cssPage, cssUrl, undefined, ref, `${rel} url()`);
    }
  }

  return { checked, internal, problems, external };
}

export function formatProblems(problems: LinkProblem[]): string {
  return problems
    .map((p) => `  ${p.page}: ${p.element}\n      ${JSON.stringify(p.ref)}: ${p.reason}`)
    .join('\n');
}
