/**
 * Security headers for every reply, and a Content-Security-Policy for the site's pages
 * that allows what the built site needs and no more: its own scripts (plus the exact
 * inline scripts of the build, by hash), WebAssembly for Pagefind's search, its own
 * WebSocket and fetch origin, inline style attributes (Starlight and xterm.js set them).
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const INLINE_SCRIPT = /<script(\s[^>]*)?>([\s\S]*?)<\/script>/gi;

/** `'sha256-…'` sources for every inline script of the built site's pages. */
export function inlineScriptHashes(siteDir: string): string[] {
  const hashes = new Set<string>();
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.html')) {
        for (const m of readFileSync(p, 'utf8').matchAll(INLINE_SCRIPT)) {
          const attrs = m[1] ?? '';
          if (/\ssrc\s*=/i.test(attrs) || /type\s*=\s*["']?application\/(ld\+)?json/i.test(attrs)) continue;
          hashes.add(`'sha256-${createHash('sha256').update(m[2]!, 'utf8').digest('base64')}'`);
        }
      }
    }
  };
  walk(siteDir);
  return [...hashes].sort();
}

export function contentSecurityPolicy(scriptHashes: readonly string[]): string {
  return [
    "default-src 'self'",
    // 'wasm-unsafe-eval': Pagefind compiles its WebAssembly index; it allows no JS eval.
    `script-src 'self' 'wasm-unsafe-eval' ${scriptHashes.join(' ')}`.trim(),
    "worker-src 'self'",
    // Style attributes (Starlight icons, xterm.js's measurements) cannot be hashed.
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data:",
    "font-src 'self' data:",
    // 'self' covers the terminals' ws(s):// to the same host (CSP 3).
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
  ].join('; ');
}

/** Headers for every reply (API included). */
export const COMMON_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'strict-origin-when-cross-origin',
  'x-frame-options': 'DENY',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
  'permissions-policy': 'camera=(), microphone=(), geolocation=(), payment=(), usb=()',
});

/** Strict-Transport-Security for replies served over TLS: a year, this host only. */
export const HSTS = 'max-age=31536000';
