/**
 * A tiny static file server for tests: serves a built site (e.g. `dist/`) on 127.0.0.1 the way a
 * plain static host (nginx, GitHub Pages, S3 + CDN) would, so tests never need the network.
 *
 * - `GET /dir/` serves `dir/index.html`; `GET /dir` (a directory) redirects 301 to `/dir/`.
 * - `GET /page` falls back to `page.html` when it exists (Astro's `build.format: 'file'`).
 * - Anything else that is missing answers 404 with the body of `404.html` (if the site has one).
 * - The site can be mounted under a sub-path (`base: '/sub/'`): requests outside it get a 404.
 * - Content types cover HTML/CSS/JS, images, fonts, `.wasm` and Pagefind's `.pf_*` / `.pagefind`.
 *
 * Usage:
 *   const server = await serveStatic('dist');            // or { base: '/sub/' }
 *   await fetch(server.url('/01-intro/'));                // -> http://127.0.0.1:PORT/01-intro/
 *   await server.close();
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';

export const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.htm': 'text/html; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.webmanifest': 'application/manifest+json; charset=utf-8',
  '.xml': 'application/xml; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.md': 'text/markdown; charset=utf-8',
  '.yaml': 'text/yaml; charset=utf-8',
  '.yml': 'text/yaml; charset=utf-8',
  '.cast': 'application/x-asciicast',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.gif': 'image/gif',
  '.webp': 'image/webp',
  '.avif': 'image/avif',
  '.ico': 'image/x-icon',
  '.woff': 'font/woff',
  '.woff2': 'font/woff2',
  '.ttf': 'font/ttf',
  '.otf': 'font/otf',
  '.mp4': 'video/mp4',
  '.webm': 'video/webm',
  '.pdf': 'application/pdf',
  '.wasm': 'application/wasm',
  // Pagefind: the wasm module (`wasm.en.pagefind`) and its index/fragment/metadata chunks.
  '.pagefind': 'application/octet-stream',
  '.pf_meta': 'application/octet-stream',
  '.pf_index': 'application/octet-stream',
  '.pf_fragment': 'application/octet-stream',
  '.pf_filter': 'application/octet-stream',
};

export function contentTypeFor(file: string): string {
  const ext = path.extname(file).toLowerCase();
  return CONTENT_TYPES[ext] ?? 'application/octet-stream';
}

export interface StaticServerOptions {
  /** Sub-path the site is mounted under, e.g. `/sub/`. Default `/`. */
  base?: string;
  /** Host to bind. Default `127.0.0.1` (never anything else in this project's tests). */
  host?: string;
  /** Port. Default 0 (a free one). */
  port?: number;
}

export interface StaticServer {
  /** `http://127.0.0.1:PORT` (no trailing slash, no base). */
  origin: string;
  /** Normalised base, always starting and ending with `/`. */
  base: string;
  /** Absolute URL for a site path. Paths without the base get it prepended: `url('/a/')` → origin + base + `a/`. */
  url(sitePath?: string): string;
  /** Every request seen, for assertions (`[status, method, path]`). */
  log: Array<[number, string, string]>;
  close(): Promise<void>;
}

export function normaliseBase(base = '/'): string {
  let b = base.trim();
  if (!b.startsWith('/')) b = `/${b}`;
  if (!b.endsWith('/')) b = `${b}/`;
  return b.replace(/\/{2,}/g, '/');
}

async function statOrNull(p: string) {
  try {
    return await stat(p);
  } catch {
    return null;
  }
}

export async function serveStatic(rootDir: string, options: StaticServerOptions = {}): Promise<StaticServer> {
  const root = path.resolve(rootDir);
  const base = normaliseBase(options.base);
  const host = options.host ?? '127.0.0.1';
  const log: Array<[number, string, string]> = [];

  const send = async (
    req: http.IncomingMessage,
    res: http.ServerResponse,
    status: number,
    file: string | null,
  ): Promise<void> => {
    log.push([status, req.method ?? 'GET', req.url ?? '']);
    if (!file) {
      res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' });
      res.end(req.method === 'HEAD' ? undefined : `${status}\n`);
      return;
    }
    const st = await stat(file);
    res.writeHead(status, {
      'content-type': contentTypeFor(file),
      'content-length': String(st.size),
      'cache-control': 'no-store',
      'x-content-type-options': 'nosniff',
    });
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    createReadStream(file).pipe(res);
  };

  const notFound = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    const page = path.join(root, '404.html');
    await send(req, res, 404, (await statOrNull(page))?.isFile() ? page : null);
  };

  const server = http.createServer((req, res) => {
    (async () => {
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        log.push([405, req.method ?? '', req.url ?? '']);
        res.writeHead(405, { allow: 'GET, HEAD' }).end();
        return;
      }
      const url = new URL(req.url ?? '/', 'http://localhost');
      let pathname: string;
      try {
        pathname = decodeURIComponent(url.pathname);
      } catch {
        await send(req, res, 400, null);
        return;
      }
      if (pathname.includes('\0')) {
        await send(req, res, 400, null);
        return;
      }
      // `/sub` (no slash) is the site root too: redirect like a host would.
      if (`${pathname}/` === base) {
        log.push([301, req.method ?? 'GET', req.url ?? '']);
        res.writeHead(301, { location: base + url.search }).end();
        return;
      }
      if (!pathname.startsWith(base)) {
        await notFound(req, res);
        return;
      }
      const rel = pathname.slice(base.length);
      const file = path.resolve(root, `.${path.posix.sep}${rel}`);
      if (file !== root && !file.startsWith(root + path.sep)) {
        await notFound(req, res); // path traversal
        return;
      }
      const st = await statOrNull(file);
      if (st?.isDirectory()) {
        if (!pathname.endsWith('/')) {
          log.push([301, req.method ?? 'GET', req.url ?? '']);
          res.writeHead(301, { location: `${url.pathname}/${url.search}` }).end();
          return;
        }
        const index = path.join(file, 'index.html');
        if ((await statOrNull(index))?.isFile()) {
          await send(req, res, 200, index);
          return;
        }
      } else if (st?.isFile()) {
        await send(req, res, 200, file);
        return;
      } else if (!pathname.endsWith('/') && (await statOrNull(`${file}.html`))?.isFile()) {
        await send(req, res, 200, `${file}.html`);
        return;
      }
      await notFound(req, res);
    })().catch((err: unknown) => {
      log.push([500, req.method ?? 'GET', req.url ?? '']);
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' });
      res.end(String(err));
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const origin = `http://${host}:${port}`;

  return {
    origin,
    base,
    log,
    url(sitePath = '/') {
      const p = sitePath.startsWith(base) ? sitePath : base + sitePath.replace(/^\/+/, '');
      return origin + p;
    },
    close() {
      return new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      });
    },
  };
}
