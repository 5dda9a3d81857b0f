/**
 * Licences of what the guest carries: for every Debian package with a file in the
 * initramfs, its exact version, its licences (from its machine-readable
 * /usr/share/doc/<package>/copyright, or the names a free-form one mentions) and its source
 * package, whose files the build downloads to sit beside the states (vm/README.md).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { debFile, type ResolvedPackage } from './apt.ts';

export interface PackageNotice {
  name: string;
  version: string;
  source: string;
  sourceVersion: string;
  /** Licence short names (DEP-5 `License:` lines, or the names a free-form file mentions). */
  licenses: string[];
  /** The package's copyright file, verbatim. */
  copyright: string;
  /** Files of the source package (.dsc, tarballs), filled in by the build. */
  sourceFiles: string[];
  /**
   * Set when apt could not fetch the source package at build time (a mirror without it):
   * the place the notices page names instead (Debian's snapshot archive keeps every version).
   */
  sourceElsewhere?: string;
}

/** Debian's snapshot archive page of one exact source version. */
export function snapshotUrl(source: string, version: string): string {
  return `https://snapshot.debian.org/package/${encodeURIComponent(source)}/${encodeURIComponent(version)}/`;
}

/** Licence names of a Debian copyright file. */
export function copyrightLicenses(text: string): string[] {
  const found = new Set<string>();
  if (/^Format:\s*\S*copyright-format/m.test(text)) {
    for (const m of text.matchAll(/^License:[ \t]*([^\n]+)$/gm)) {
      const name = m[1]!.trim();
      if (name) found.add(name);
    }
  } else {
    const known: [RegExp, string][] = [
      [/GNU General Public License,? [Vv]ersion 2|GPL-?2|GPL version 2/, 'GPL-2'],
      [/GNU General Public License,? [Vv]ersion 3|GPL-?3|GPL version 3/, 'GPL-3'],
      [/GNU Lesser General Public License|LGPL/, 'LGPL'],
      [/BSD/, 'BSD'],
      [/Public Domain|public domain/, 'public-domain'],
      [/MIT|X11/, 'MIT'],
    ];
    for (const [re, name] of known) if (re.test(text)) found.add(name);
    if (found.size === 0) found.add('see the copyright file');
  }
  return [...found].sort();
}

/** Which package each path of the unpacked tree came from (from `dpkg-deb -c`). */
function packageFiles(deb: string): string[] {
  const out = execFileSync('dpkg-deb', ['-c', deb], { encoding: 'utf8', maxBuffer: 64 << 20 });
  return out
    .split('\n')
    .map((l) => /\s\.(\/\S*?)(?: -> .*)?$/.exec(l)?.[1])
    .filter((p): p is string => Boolean(p))
    .map((p) => p.replace(/\/$/, ''));
}

export function buildNotices(input: {
  tree: string;
  packages: readonly ResolvedPackage[];
  debDir: string;
  guestFiles: readonly string[];
}): PackageNotice[] {
  const wanted = new Set(input.guestFiles);
  const out: PackageNotice[] = [];
  for (const p of input.packages) {
    const deb = debFile(input.debDir, p);
    const files = packageFiles(deb);
    const used =
      files.some((f) => wanted.has(f)) || p.name.startsWith('linux-image-') || p.name === 'seabios';
    if (!used) continue;
    const cf = path.join(input.tree, 'usr', 'share', 'doc', p.name, 'copyright');
    const copyright = existsSync(cf) ? readFileSync(cf, 'utf8') : '';
    out.push({
      name: p.name,
      version: p.version,
      source: p.source,
      sourceVersion: p.sourceVersion,
      licenses: copyright ? copyrightLicenses(copyright) : ['unknown: the package has no copyright file'],
      copyright,
      sourceFiles: [],
    });
  }
  return out.sort((a, b) => a.name.localeCompare(b.name));
}
