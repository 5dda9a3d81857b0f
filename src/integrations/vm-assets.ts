/**
 * An Astro integration: after the site is built, puts the in-browser VM's files into
 * `dist/vm/` (the emulator's BIOS, each lab's saved state: content-hashed names from
 * vm/build.ts), each guest package's copyright file into `dist/vm/copyright/`, and the
 * Debian source packages of everything in the guest into `dist/vm/sources/`, so a site that
 * serves the binaries serves their sources from the same place (the GPL's "equivalent
 * access"). Files are hard-linked from `.cache/vm/` where the file system allows.
 * Without a VM build the site is built without the mode, and the build says why.
 */
import { copyFileSync, existsSync, linkSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AstroIntegration } from 'astro';
import { readCurrent } from '../../vm/lib/manifest.ts';

function place(from: string, to: string): void {
  rmSync(to, { force: true });
  try {
    linkSync(from, to);
  } catch {
    copyFileSync(from, to);
  }
}

export function vmAssets(): AstroIntegration {
  let root = process.cwd();
  return {
    name: 'container-labs-vm-assets',
    hooks: {
      'astro:config:done': ({ config }) => {
        root = fileURLToPath(config.root);
      },
      'astro:build:done': ({ dir, logger }) => {
        const cur = readCurrent(root);
        if ('reason' in cur) {
          logger.warn(`no in-browser labs in this build: ${cur.reason}`);
          return;
        }
        const out = path.join(fileURLToPath(dir), 'vm');
        mkdirSync(out, { recursive: true });
        const site = path.join(cur.dir, 'site');
        for (const f of readdirSync(site)) place(path.join(site, f), path.join(out, f));
        const copyright = path.join(out, 'copyright');
        mkdirSync(copyright, { recursive: true });
        const sources = path.join(out, 'sources');
        mkdirSync(sources, { recursive: true });
        const cache = path.join(root, '.cache', 'vm', 'sources');
        let missing = 0;
        for (const n of cur.manifest.notices) {
          writeFileSync(path.join(copyright, `${n.name}.txt`), n.copyright);
          for (const f of n.sourceFiles) {
            const from = path.join(cache, f);
            if (existsSync(from)) place(from, path.join(sources, f));
            else missing++;
          }
        }
        if (missing)
          logger.warn(
            `${missing} source files of the guest are missing from .cache/vm/sources/: run node vm/build.ts`,
          );
        logger.info(
          `in-browser labs: VM build ${cur.manifest.hash} (${Object.keys(cur.manifest.labs).join(', ')}) in vm/`,
        );
      },
    },
  };
}
