/**
 * Assembles what the server image runs into one folder (the image's /app):
 *
 *   node deploy/assemble.ts <out-dir>
 *
 * package.json, server/src and labs/ (without tests), scripts/admin.ts, the deploy
 * helpers the image uses (entrypoint, health check), the built site (dist/), and from
 * node_modules only the packages the server's code imports, with their dependencies
 * (about a tenth of the full install: Astro and the other build tools stay out).
 *
 * Used on this machine by deploy/build-image.ts (offline build) and inside the registry
 * build stage of the Dockerfile, so both images hold the same files.
 */

import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join, relative, sep } from 'node:path';

export const ROOT = join(import.meta.dirname, '..');

/** Source folders and files copied as they are (tests left out). */
const SOURCES = [
  'package.json',
  'server/src',
  'labs',
  'scripts/admin.ts',
  'deploy/entrypoint.sh',
  'deploy/healthcheck.ts',
];

const isTest = (p: string) => /\.test\.ts$/.test(p);

function walkFiles(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walkFiles(p, out);
    else out.push(p);
  }
  return out;
}

/** Bare package names imported by the TypeScript files under `paths` (node: builtins out). */
export function importedPackages(root: string, paths: string[]): string[] {
  const names = new Set<string>();
  const re = /(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)['"]([^'"]+)['"]/g;
  for (const rel of paths) {
    const abs = join(root, rel);
    if (!existsSync(abs)) continue;
    const files = statSync(abs).isDirectory() ? walkFiles(abs) : [abs];
    for (const f of files) {
      if (!f.endsWith('.ts') || isTest(f)) continue;
      for (const m of readFileSync(f, 'utf8').matchAll(re)) {
        const spec = m[1]!;
        if (spec.startsWith('.') || spec.startsWith('/') || spec.startsWith('node:')) continue;
        const parts = spec.split('/');
        const name = spec.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!;
        if (builtinModules.includes(name)) continue;
        names.add(name);
      }
    }
  }
  return [...names].sort();
}

/** Node's lookup: `<dir>/node_modules/<name>`, then each parent folder's, up to `root`. */
function findPackage(name: string, fromDir: string, root: string): string | undefined {
  for (let dir = fromDir; ; dir = dirname(dir)) {
    const candidate = join(dir, 'node_modules', name);
    if (existsSync(join(candidate, 'package.json'))) return candidate;
    if (dir === root || dirname(dir) === dir) return undefined;
  }
}

/** Package folders needed to run `names` (dependencies, optional and peer ones found). */
export function dependencyClosure(root: string, names: string[]): string[] {
  const seen = new Set<string>();
  const visit = (name: string, fromDir: string, required: boolean) => {
    const dir = findPackage(name, fromDir, root);
    if (!dir) {
      if (required)
        throw new Error(
          `package "${name}" (needed from ${relative(root, fromDir) || '.'}) is not installed: run npm ci`,
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
  for (const n of names) visit(n, root, true);
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
  const pkgs = dependencyClosure(root, importedPackages(root, SOURCES));
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
  const out = process.argv[2];
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
