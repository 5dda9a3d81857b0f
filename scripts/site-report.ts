/**
 * Site weight report, run after `astro build` by `npm run build`:
 *
 *   node scripts/site-report.ts [distDir] [--base /sub/] [--json]
 *
 * For every HTML page in dist/ it computes what a first load fetches, without a browser:
 * - JS: `<script src>` (module or classic), `<link rel="modulepreload">` and inline `<script>`s, plus
 *   everything they import statically (`import … from`, `import '…'`, `export … from`), followed
 *   through the built chunks. Dynamic `import()` is on-demand and not counted, and neither is
 *   Pagefind (`<base>pagefind/`), which the search dialog loads when it is opened.
 * - CSS: `<link rel="stylesheet">` (any media) and their `@import`s; the files their `url()`s point
 *   to (fonts, images) are counted in "other".
 * - other: images, icons, preloads, media posters.
 * Each file is measured gzipped (text) or raw (already-compressed binaries: images, fonts, wasm).
 * Inline scripts are counted in the JS figure too (gzipped on their own), on top of the HTML.
 *
 * Exit code 1 when a page's first-load JS is over JS_BUDGET_GZIP_BYTES, 2 when dist/ is missing.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { gzipSync } from 'node:zlib';
import { init as initLexer, parse as parseModule } from 'es-module-lexer';
import { type DefaultTreeAdapterMap, parse as parseHtml } from 'parse5';

/** First-load JS budget per page, gzipped. */
export const JS_BUDGET_GZIP_BYTES = 60 * 1024;

type Node = DefaultTreeAdapterMap['node'];
type Element = DefaultTreeAdapterMap['element'];

export type AssetKind = 'js' | 'css' | 'other';

export interface Asset {
  /** Site path (no origin), e.g. `/_astro/page.abc.js`, or `inline#<n> "<first chars>"` for an inline script. */
  url: string;
  kind: AssetKind;
  /** File in dist/ (absent for inline scripts). */
  file?: string;
  bytes: number;
  gzipBytes: number;
  /** Why it is loaded: the page, or the chunk that imports it. */
  via: string;
}

export interface PageReport {
  /** File relative to dist/, e.g. `01-intro/index.html`. */
  file: string;
  /** Site path, e.g. `/01-intro/`. */
  path: string;
  htmlBytes: number;
  htmlGzipBytes: number;
  assets: Asset[];
  jsGzipBytes: number;
  cssGzipBytes: number;
  otherBytes: number;
  /** HTML + JS + CSS + other, as transferred (gzip for text, raw for binaries). */
  totalTransferBytes: number;
  /** References to files that are not in dist/ (reported; the link check test fails on them). */
  missing: string[];
}

export interface SiteReport {
  dist: string;
  base: string;
  budget: number;
  pages: PageReport[];
  maxJs: PageReport | undefined;
  overBudget: PageReport[];
}

const COMPRESSIBLE = new Set([
  '.html',
  '.css',
  '.js',
  '.mjs',
  '.json',
  '.svg',
  '.xml',
  '.txt',
  '.map',
  '.webmanifest',
  '.ttf',
  '.otf',
  '.cast',
]);

function normaliseBase(base: string): string {
  let b = base.startsWith('/') ? base : `/${base}`;
  if (!b.endsWith('/')) b += '/';
  return b;
}

export function listHtmlFiles(dist: string): string[] {
  const out: string[] = [];
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.isFile() && entry.name.endsWith('.html')) out.push(path.relative(dist, full));
    }
  };
  walk(dist);
  return out.sort();
}

/** `01-intro/index.html` → `/01-intro/`; `404.html` → `/404.html`. */
export function sitePathOf(relFile: string, base = '/'): string {
  const posix = relFile.split(path.sep).join('/');
  const b = normaliseBase(base);
  if (posix === 'index.html') return b;
  if (posix.endsWith('/index.html')) return b + posix.slice(0, -'index.html'.length);
  return b + posix;
}

function* elements(node: Node): Generator<Element> {
  if ('tagName' in node) yield node as Element;
  const children = 'childNodes' in node ? node.childNodes : [];
  // <template> content is inert (parse5 keeps it in `content`, not `childNodes`): not a first load.
  for (const child of children) yield* elements(child);
}

function attr(el: Element, name: string): string | undefined {
  return el.attrs.find((a) => a.name === name)?.value;
}

function textOf(el: Element): string {
  return el.childNodes.map((n) => ('value' in n && n.nodeName === '#text' ? n.value : '')).join('');
}

class SizeCache {
  private cache = new Map<string, { bytes: number; gzipBytes: number }>();
  measure(file: string): { bytes: number; gzipBytes: number } {
    let hit = this.cache.get(file);
    if (!hit) {
      const buf = readFileSync(file);
      const compressible = COMPRESSIBLE.has(path.extname(file).toLowerCase());
      hit = { bytes: buf.length, gzipBytes: compressible ? gzipSync(buf, { level: 9 }).length : buf.length };
      this.cache.set(file, hit);
    }
    return hit;
  }
}

export async function analyseSite(dist: string, base = '/'): Promise<SiteReport> {
  await initLexer();
  const b = normaliseBase(base);
  const origin = 'http://site.invalid';
  const sizes = new SizeCache();

  /** Site URL → file in dist/ (undefined if the URL is not a file of this site). */
  const toFile = (url: URL): string | undefined => {
    if (url.origin !== origin || !url.pathname.startsWith(b)) return undefined;
    let rel = decodeURIComponent(url.pathname.slice(b.length));
    if (rel === '' || rel.endsWith('/')) rel += 'index.html';
    const file = path.join(dist, rel);
    return existsSync(file) && statSync(file).isFile() ? file : undefined;
  };
  const isPagefind = (url: URL): boolean => url.origin === origin && url.pathname.startsWith(`${b}pagefind/`);
  const isSameSite = (url: URL): boolean => url.origin === origin;

  const pages: PageReport[] = [];
  for (const rel of listHtmlFiles(dist)) {
    const htmlFile = path.join(dist, rel);
    const pagePath = sitePathOf(rel, b);
    const pageUrl = new URL(pagePath, origin);
    const html = readFileSync(htmlFile, 'utf8');
    const doc = parseHtml(html);
    const seen = new Map<string, Asset>();
    const missing: string[] = [];
    let inlineCount = 0;

    const resolve = (ref: string, from: URL): URL | undefined => {
      try {
        return new URL(ref, from);
      } catch {
        return undefined;
      }
    };

    const addFile = (url: URL, kind: AssetKind, via: string): string | undefined => {
      if (!isSameSite(url)) return undefined; // external: not part of this site's weight
      const key = url.pathname;
      if (seen.has(key)) return undefined;
      const file = toFile(url);
      if (!file) {
        missing.push(`${key} (${kind}, via ${via})`);
        return undefined;
      }
      const { bytes, gzipBytes } = sizes.measure(file);
      seen.set(key, { url: key, kind, file, bytes, gzipBytes, via });
      return file;
    };

    const followJs = (source: string, from: URL, via: string): void => {
      let imports: ReturnType<typeof parseModule>[0];
      try {
        [imports] = parseModule(source);
      } catch {
        return; // classic (non-module) script syntax the lexer rejects: no static imports to follow
      }
      for (const imp of imports) {
        if (imp.type !== 'static' && imp.type !== 'reexport-star') continue; // dynamic import(), import.meta
        if (!imp.specifier) continue;
        const url = resolve(imp.specifier, from);
        if (!url || isPagefind(url)) continue;
        const file = addFile(url, 'js', via);
        if (file) followJs(readFileSync(file, 'utf8'), url, url.pathname);
      }
    };

    const followCss = (source: string, from: URL, via: string): void => {
      for (const m of source.matchAll(/@import\s+(?:url\()?\s*["']?([^"')\s;]+)["']?\s*\)?/g)) {
        const url = m[1] ? resolve(m[1], from) : undefined;
        if (!url) continue;
        const file = addFile(url, 'css', via);
        if (file) followCss(readFileSync(file, 'utf8'), url, url.pathname);
      }
      for (const m of source.matchAll(/url\(\s*["']?([^"')]+)["']?\s*\)/g)) {
        const ref = m[1];
        if (!ref || ref.startsWith('data:') || ref.startsWith('#') || ref.endsWith('.css')) continue;
        const url = resolve(ref, from);
        if (url) addFile(url, 'other', via);
      }
    };

    for (const el of elements(doc)) {
      if (el.tagName === 'script') {
        const type = (attr(el, 'type') ?? '').trim().toLowerCase();
        const isJs = type === '' || type === 'module' || type.includes('javascript');
        if (!isJs) continue; // JSON, templates, importmaps…
        const src = attr(el, 'src');
        if (src !== undefined) {
          const url = resolve(src, pageUrl);
          if (!url || isPagefind(url)) continue;
          const file = addFile(url, 'js', pagePath);
          if (file) followJs(readFileSync(file, 'utf8'), url, url.pathname);
        } else {
          const code = textOf(el);
          if (!code.trim()) continue;
          const snippet = code.trim().replace(/\s+/g, ' ').slice(0, 40);
          const key = `inline#${++inlineCount} ${JSON.stringify(snippet)}`;
          const buf = Buffer.from(code);
          seen.set(key, {
            url: key,
            kind: 'js',
            bytes: buf.length,
            gzipBytes: gzipSync(buf, { level: 9 }).length,
            via: pagePath,
          });
          followJs(code, pageUrl, `${pagePath} ${key}`);
        }
      } else if (el.tagName === 'link') {
        const rels = (attr(el, 'rel') ?? '').toLowerCase().split(/\s+/);
        const href = attr(el, 'href');
        if (!href) continue;
        const url = resolve(href, pageUrl);
        if (!url || isPagefind(url)) continue;
        if (rels.includes('stylesheet')) {
          const file = addFile(url, 'css', pagePath);
          if (file) followCss(readFileSync(file, 'utf8'), url, url.pathname);
        } else if (rels.includes('modulepreload')) {
          const file = addFile(url, 'js', pagePath);
          if (file) followJs(readFileSync(file, 'utf8'), url, url.pathname);
        } else if (rels.includes('icon') || rels.includes('preload') || rels.includes('apple-touch-icon')) {
          const as = attr(el, 'as');
          addFile(url, as === 'script' ? 'js' : as === 'style' ? 'css' : 'other', pagePath);
        }
      } else if (el.tagName === 'img' || (el.tagName === 'input' && attr(el, 'type') === 'image')) {
        const src = attr(el, 'src');
        const url = src ? resolve(src, pageUrl) : undefined;
        if (url) addFile(url, 'other', pagePath);
      } else if (el.tagName === 'video') {
        const poster = attr(el, 'poster');
        const url = poster ? resolve(poster, pageUrl) : undefined;
        if (url) addFile(url, 'other', pagePath);
      }
    }

    const assets = [...seen.values()];
    const sum = (kind: AssetKind, key: 'gzipBytes' | 'bytes') =>
      assets.filter((a) => a.kind === kind).reduce((n, a) => n + a[key], 0);
    const { bytes: htmlBytes, gzipBytes: htmlGzipBytes } = sizes.measure(htmlFile);
    const jsGzipBytes = sum('js', 'gzipBytes');
    const cssGzipBytes = sum('css', 'gzipBytes');
    const otherBytes = sum('other', 'gzipBytes');
    pages.push({
      file: rel.split(path.sep).join('/'),
      path: pagePath,
      htmlBytes,
      htmlGzipBytes,
      assets,
      jsGzipBytes,
      cssGzipBytes,
      otherBytes,
      totalTransferBytes: htmlGzipBytes + jsGzipBytes + cssGzipBytes + otherBytes,
      missing,
    });
  }

  pages.sort((x, y) => (x.path < y.path ? -1 : x.path > y.path ? 1 : 0));
  const maxJs = pages.reduce<PageReport | undefined>(
    (m, p) => (!m || p.jsGzipBytes > m.jsGzipBytes ? p : m),
    undefined,
  );
  return {
    dist,
    base: b,
    budget: JS_BUDGET_GZIP_BYTES,
    pages,
    maxJs,
    overBudget: pages.filter((p) => p.jsGzipBytes > JS_BUDGET_GZIP_BYTES),
  };
}

export function kb(bytes: number): string {
  return `${(bytes / 1024).toFixed(1)} KB`;
}

export function formatReport(report: SiteReport): string {
  const rows = report.pages.map((p) => [
    p.path,
    String(p.assets.filter((a) => a.kind === 'js').length),
    kb(p.jsGzipBytes),
    kb(p.cssGzipBytes),
    kb(p.htmlGzipBytes),
    kb(p.otherBytes),
    kb(p.totalTransferBytes),
    p.jsGzipBytes > report.budget ? 'OVER' : 'ok',
  ]);
  const head = [
    'page',
    'js files',
    'JS (gz)',
    'CSS (gz)',
    'HTML (gz)',
    'other',
    'total',
    `budget ${kb(report.budget)}`,
  ];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join('  ');
  const out: string[] = [];
  out.push(`Site report for ${report.dist} (base ${report.base}): first-load transfer per page, gzipped`);
  out.push(line(head));
  out.push(line(widths.map((w) => '-'.repeat(w))));
  for (const r of rows) out.push(line(r));
  const max = report.maxJs;
  if (max) {
    out.push('');
    out.push(
      `Max first-load JS: ${kb(max.jsGzipBytes)} gzipped on ${max.path} (budget ${kb(report.budget)}):`,
    );
    for (const a of [...max.assets]
      .filter((x) => x.kind === 'js')
      .sort((x, y) => y.gzipBytes - x.gzipBytes)) {
      out.push(
        `  ${kb(a.gzipBytes).padStart(9)}  ${a.url}${a.via !== max.path ? `  (imported by ${a.via})` : ''}`,
      );
    }
    const heaviest = report.pages.reduce(
      (m, p) => (p.totalTransferBytes > m.totalTransferBytes ? p : m),
      max,
    );
    const total = report.pages.reduce((n, p) => n + p.totalTransferBytes, 0);
    out.push(`Max total page weight: ${kb(heaviest.totalTransferBytes)} on ${heaviest.path}`);
    out.push(`Total page weight, all ${report.pages.length} pages: ${kb(total)}`);
  }
  const missing = report.pages.flatMap((p) => p.missing.map((m) => `  ${p.path}: ${m}`));
  if (missing.length) out.push('', `Referenced files missing from ${report.dist}:`, ...missing);
  if (report.overBudget.length) {
    out.push(
      '',
      `FAIL: ${report.overBudget.length} page(s) over the ${kb(report.budget)} first-load JS budget:`,
    );
    for (const p of report.overBudget) out.push(`  ${p.path}: ${kb(p.jsGzipBytes)}`);
  }
  return out.join('\n');
}

const USAGE = 'usage: node scripts/site-report.ts [distDir] [--base /sub/] [--json]';

async function main(argv: string[]): Promise<number> {
  const root = fileURLToPath(new URL('..', import.meta.url));
  let args: { values: { base?: string; json: boolean }; positionals: string[] };
  try {
    args = parseArgs({
      args: argv,
      allowPositionals: true,
      options: { base: { type: 'string' }, json: { type: 'boolean', default: false } },
    });
  } catch (err) {
    console.error(`site-report: ${(err as Error).message}\n${USAGE}`);
    return 2;
  }
  if (args.positionals.length > 1) {
    console.error(`site-report: one built site at a time, not ${args.positionals.length}\n${USAGE}`);
    return 2;
  }
  const dist = args.positionals[0] ? path.resolve(args.positionals[0]) : path.join(root, 'dist');
  let base = args.values.base;
  const json = args.values.json;
  if (!existsSync(dist)) {
    console.error(
      `site-report: no built site at ${dist}: run \`npm run build\` (or \`npx astro build\`) first.`,
    );
    return 2;
  }
  if (base === undefined) {
    try {
      const config = (await import(pathToFileURL(path.join(root, 'astro.config.mjs')).href)) as {
        default?: { base?: string };
      };
      base = config.default?.base ?? '/';
    } catch {
      base = '/';
    }
  }
  const report = await analyseSite(dist, base);
  if (report.pages.length === 0) {
    console.error(`site-report: no HTML pages in ${dist}.`);
    return 2;
  }
  console.log(json ? JSON.stringify(report, null, 2) : formatReport(report));
  return report.overBudget.length ? 1 : 0;
}

if (import.meta.main) {
  process.exitCode = await main(process.argv.slice(2));
}
