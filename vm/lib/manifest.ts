/**
 * What a VM build produced (`.cache/vm/builds/<hash>/manifest.json`) and which build the
 * site uses (`.cache/vm/current.json`): read by the site build (src/integrations/vm-assets.ts,
 * src/lib/labs-build.ts) to copy the files and to tell each lab block where its state is.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { PackageNotice } from './notices.ts';

export interface VmFile {
  /** File name in dist/vm/ (content-hashed: cached for good). */
  file: string;
  bytes: number;
}

export interface VmManifest {
  hash: string;
  builtAt: string;
  v86: string;
  memoryBytes: number;
  vgaMemoryBytes: number;
  kernel: string;
  bios: VmFile;
  vgaBios: VmFile;
  labs: Record<string, VmFile & { rawBytes: number; memoryLimitBytes: number; user: 'reader' | 'root' }>;
  notices: PackageNotice[];
  figures: { coldBootSeconds: number; initrdBytes: number; buildSeconds: number };
}

/** current.json: the build to use, or why there is none. */
export type VmCurrent = { hash: string; dir: string } | { hash: null; reason: string };

export function writeCurrent(cache: string, m: VmManifest | undefined, reason?: string): void {
  mkdirSync(cache, { recursive: true });
  const cur: VmCurrent = m
    ? { hash: m.hash, dir: path.join(cache, 'builds', m.hash) }
    : { hash: null, reason: reason ?? 'not built' };
  writeFileSync(path.join(cache, 'current.json'), `${JSON.stringify(cur, null, 2)}\n`);
}

/** The VM build the site uses, with its folder, or why there is none. */
export function readCurrent(root: string): { manifest: VmManifest; dir: string } | { reason: string } {
  const file = path.join(root, '.cache', 'vm', 'current.json');
  if (!existsSync(file))
    return { reason: 'the in-browser VM was not built (run `npm run build` on Debian, as CI does)' };
  const cur = JSON.parse(readFileSync(file, 'utf8')) as VmCurrent;
  if (cur.hash === null) return { reason: cur.reason };
  const mf = path.join(cur.dir, 'manifest.json');
  if (!existsSync(mf)) return { reason: `the VM build ${cur.hash} is missing from .cache/vm/builds/` };
  return { manifest: JSON.parse(readFileSync(mf, 'utf8')) as VmManifest, dir: cur.dir };
}
