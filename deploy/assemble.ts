/**
 * Assembles what the server image runs into one folder (the image's /app):
 *
 *   node deploy/assemble.ts <out-dir>
 *
 * package.json and server/package.json, server/src and labs/ (without tests),
 * scripts/admin.ts, the deploy helpers the image uses (entrypoint, health check), the built
 * site (dist/), and from node_modules exactly the server package's dependencies
 * (server/package.json, the npm workspace `@container-labs/server`) with theirs: Astro and
 * the other build tools are the root package's and stay out.
 *
 * Used on this machine by deploy/build-image.ts (offline build) and inside the registry
 * build stage of the Dockerfile, so both images hold the same files.
 */

import { cpSync, existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join, relative, sep } from 'node:path';
import { parseArgs } from 'node:util';

export const ROOT = join(import.meta.dirname, '..');
/** The server's npm workspace: its package.json declares what the image's code imports. */
export const SERVER_PACKAGE = 'server';

/**
 * Source folders and files copied as they are (tests left out). WARNING: a package that
 * any of them imports must be a dependency in server/package.json, or the image lacks it
 * (tests/deploy/config.test.ts checks every import).
 */
export const SOURCES = [
  'package.json',
  'server/package.json',
  'server/src',
  'labs',
  'scripts/admin.ts',
  'deploy/entrypoint.sh',
  'deploy/healthcheck.ts',
];

const isTest = (p: string) => /\.test\.ts$/.test(p);

/** The names the server package depends on (its package.json `dependencies`). */
export function serverDependencies(root: string = ROOT): string[] {
  const pkg = JSON.parse(readFileSync(join(root, SERVER_PACKAGE, 'package.json'), 'utf8')) as {
    dependencies?: Record<string, string>;
  };
  return Object.keys(pkg.dependencies ?? {}).sort();
}

/** Node's lookup: `<dir>/node_modules/<name>`, then each parent folder's, up to `root`. */
function findPackage(name: string, fromDir: string, root: string): string | undefined {
  for (let dir = fromDir; ; dir = dirname(dir)) {
    const candidate = join(dir, 'node_modules', name);
    if (existsSync(join(candidate, 'package.json'))) return candidate;
    if (dir === root || dirname(dir) === dir) return undefined;
  }
}

/**
 * Package folders needed to run `names`, looked up from `fromDir` as Node would (a
 * workspace's own node_modules, then the root's): their dependencies, and the optional and
 * peer ones that are installed.
 */
export function dependencyClosure(root: string, names: string[], fromDir: string = root): string[] {
  const seen = new Set<string>();
  const visit = (name: string, from: string, required: boolean) => {
    const dir = findPackage(name, from, root);
    if (!dir) {
      if (required)
        throw new Error(
          `package "${name}" (needed from ${relative(root, from) || '.'}) is not installed: run npm ci`,
        );
      return;
    }
    if (seen.has(dir)) return;
    seen.add(dir);
    const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as Record<
      string,
      Record<string, string>
    >;
    for (const d of Object.keys(pkg.dependencies ?? {})) visit(d, dir, true);
    for (const d of Object.keys(pkg.optionalDependencies ?? {})) visit(d, dir, false);
    for (const d of Object.keys(pkg.peerDependencies ?? {})) visit(d, dir, false);
  };
  for (const n of names) visit(n, fromDir, true);
  return [...seen].sort();
}

/**
 * Which files of an installed package go into the image. Nested node_modules are copied
 * as packages of their own, only when needed; native prebuilds for other systems and
 * native sources (node-pty ships Windows and macOS binaries and winpty's sources: 60 MB)
 * stay out. The image is Linux on the CPU that assembles it.
 */
export function keepInPackage(pkg: string, rel: string, arch: string = process.arch): boolean {
  const parts = rel.split(sep);
  if (parts.includes('node_modules')) return false;
  const i = parts.indexOf('prebuilds');
  if (i >= 0 && parts[i + 1] !== undefined && !parts[i + 1]!.startsWith(`linux-${arch}`)) return false;
  if (pkg === 'node-pty' && ['deps', 'third_party', 'src'].includes(parts[0]!)) return false;
  return true;
}

export function assemble(out: string, root: string = ROOT): { packages: number } {
  if (!existsSync(join(root, 'dist', 'index.html'))) {
    throw new Error('dist/ is not built: run `npm run build` first');
  }
  rmSync(out, { recursive: true, force: true });
  mkdirSync(out, { recursive: true });
  for (const rel of [...SOURCES, 'dist']) {
    const src = join(root, rel);
    if (!existsSync(src)) throw new Error(`${rel} is missing`);
    cpSync(src, join(out, rel), { recursive: true, filter: (p) => !isTest(p) });
  }
  const pkgs = dependencyClosure(root, serverDependencies(root), join(root, SERVER_PACKAGE));
  for (const dir of pkgs) {
    const rel = relative(root, dir);
    const name = rel.split(sep).slice(-2)[0]!.startsWith('@')
      ? rel.split(sep).slice(-2).join('/')
      : rel.split(sep).pop()!;
    cpSync(dir, join(out, rel), { recursive: true, filter: (p) => keepInPackage(name, relative(dir, p)) });
  }
  return { packages: pkgs.length };
}

if (import.meta.main) {
  let out: string | undefined;
  try {
    const { positionals } = parseArgs({ allowPositionals: true });
    if (positionals.length === 1) out = positionals[0];
  } catch (err) {
    console.error(`assemble: ${(err as Error).message}`);
  }
  if (!out) {
    console.error('usage: node deploy/assemble.ts <out-dir>');
    process.exit(2);
  }
  try {
    const { packages } = assemble(out);
    console.log(`assembled ${out}: app and ${packages} packages`);
  } catch (err) {
    console.error(`assemble: ${(err as Error).message}`);
    process.exit(1);
  }
}
