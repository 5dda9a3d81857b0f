/**
 * Security headers for every reply (helmet, through @fastify/helmet), and a
 * Content-Security-Policy for the site's pages that allows what the built site needs and no
 * more: its own scripts (plus the exact inline scripts of the build, by hash), WebAssembly
 * for Pagefind's search, its own WebSocket and fetch origin, inline style attributes
 * (Starlight and xterm.js set them).
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import fastifyHelmet, { type FastifyHelmetOptions } from '@fastify/helmet';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';

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

/** The pages' CSP as helmet's directives (helmet checks and serialises them). */
export function pageCspDirectives(scriptHashes: readonly string[]): Record<string, string[]> {
  return {
    'default-src': ["'self'"],
    // 'wasm-unsafe-eval': Pagefind compiles its WebAssembly index; it allows no JS eval.
    'script-src': ["'self'", "'wasm-unsafe-eval'", ...scriptHashes],
    'worker-src': ["'self'"],
    // Style attributes (Starlight icons, xterm.js's measurements) cannot be hashed.
    'style-src': ["'self'", "'unsafe-inline'"],
    'img-src': ["'self'", 'data:'],
    'font-src': ["'self'", 'data:'],
    // 'self' covers the terminals' ws(s):// to the same host (CSP 3).
    'connect-src': ["'self'"],
    'object-src': ["'none'"],
    'base-uri': ["'self'"],
    'form-action': ["'self'"],
    'frame-ancestors': ["'none'"],
  };
}

/**
 * What helmet sends on every reply (API included). Its defaults are changed where they
 * differ from ours: no CSP and no HSTS here (per page and per TLS reply, below), none of
 * the headers for old browsers (X-XSS-Protection, X-DNS-Prefetch-Control,
 * X-Download-Options, X-Permitted-Cross-Domain-Policies) nor Origin-Agent-Cluster.
 */
const HELMET_EVERY_REPLY: FastifyHelmetOptions = {
  contentSecurityPolicy: false,
  strictTransportSecurity: false,
  crossOriginEmbedderPolicy: false,
  crossOriginOpenerPolicy: { policy: 'same-origin' },
  crossOriginResourcePolicy: { policy: 'same-origin' },
  originAgentCluster: false,
  referrerPolicy: { policy: 'strict-origin-when-cross-origin' },
  xDnsPrefetchControl: false,
  xDownloadOptions: false,
  xFrameOptions: { action: 'deny' },
  xPermittedCrossDomainPolicies: false,
  xXssProtection: false,
};

/** Strict-Transport-Security for replies served over TLS: a year, this host only. */
const HSTS = { maxAge: 31_536_000, includeSubDomains: false, preload: false };

/** Helmet has no Permissions-Policy (browsers' powerful features, all off). */
const PERMISSIONS_POLICY = 'camera=(), microphone=(), geolocation=(), payment=(), usb=()';

export interface SecurityHeadersOptions {
  /** The build's inline scripts (inlineScriptHashes), read once: restart after a new build. */
  scriptHashes: readonly string[];
}

async function securityHeadersPlugin(app: FastifyInstance, opts: SecurityHeadersOptions): Promise<void> {
  await app.register(fastifyHelmet, HELMET_EVERY_REPLY);
  const pageCsp = { useDefaults: false, directives: pageCspDirectives(opts.scriptHashes) };
  app.addHook('onSend', async (req, reply, payload) => {
    reply.header('permissions-policy', PERMISSIONS_POLICY);
    // WARNING: a refused WebSocket upgrade is answered on a socket that is closed right
    // after; saying keep-alive there makes a proxy reuse a dead upstream connection (nginx
    // then retries and logs the next request whole, query string included).
    if (req.headers.upgrade !== undefined) reply.header('connection', 'close');
    const type = reply.getHeader('content-type');
    const page = typeof type === 'string' && type.startsWith('text/html');
    // Served over TLS (at a trusted proxy that says so in X-Forwarded-Proto): browsers
    // should never try plain HTTP for this site again, where an invite code would travel
    // in the clear.
    const tls = req.protocol === 'https';
    if (page || tls) {
      reply.helmet({
        contentSecurityPolicy: page ? pageCsp : false,
        strictTransportSecurity: tls ? HSTS : false,
      });
    }
    return payload;
  });
}

/**
 * The security headers on every route of the app that registers it (fastify-plugin: its
 * hooks are the registering context's, not a child's). Register it before any route.
 */
export const securityHeaders = fp(securityHeadersPlugin, { name: 'security-headers', fastify: '5.x' });
