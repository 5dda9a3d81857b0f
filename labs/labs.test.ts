import assert from 'node:assert/strict';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { basePackages, LABS_DIR } from './images.ts';
import { loadLabs } from './load.ts';

const labs = await loadLabs(LABS_DIR);

/** Where files of a lab's image come from: its own folder, then the files every lab gets. */
const imageRoots = (id: string) => [join(LABS_DIR, id, 'image'), join(LABS_DIR, '_common', 'rootfs')];

/**
 * Where the program an app command starts comes from: a file of the lab's image (an
 * absolute path, or a bare name in /usr/local/bin or /usr/local/sbin), or a package of the
 * base image named like it (busybox), or a program of Debian's essential set (sleep).
 * Undefined when it is none of these.
 */
function programSource(id: string, command: string): string | undefined {
  const program = command.replace(/^exec\s+/, '').split(/\s+/)[0] ?? '';
  const paths = program.startsWith('/')
    ? [program]
    : [`/usr/local/bin/${program}`, `/usr/local/sbin/${program}`];
  for (const root of imageRoots(id)) {
    for (const p of paths) if (existsSync(join(root, p))) return join(root, p);
  }
  if (ESSENTIAL.includes(program)) return `package ${program} (Debian's essential set)`;
  return basePackages().includes(program) ? `package ${program}` : undefined;
}

/**
 * Programs of Debian's Essential packages (coreutils, dash, bash), which every base we build
 * has whatever packages.txt lists: debootstrap's minbase and debian:bookworm-slim alike.
 */
const ESSENTIAL = ['sleep', 'sh', 'bash', 'cat', 'true'];

describe('the labs', () => {
  it('are the seven labs of the course, all valid', () => {
    assert.deepEqual(
      labs.map((l) => l.id),
      ['by-hand', 'cgroups', 'docker-run', 'layers', 'namespaces', 'processes', 'security'],
    );
  });

  for (const lab of labs) {
    it(`${lab.id}: has a terminal on each side`, () => {
      const targets = lab.terminals.map((t) => t.target).sort();
      assert.deepEqual(targets, ['container', 'host']);
    });

    it(`${lab.id}: its app command starts a program of the image, and names only paths it has`, () => {
      const source = programSource(lab.id, lab.app.command);
      assert.ok(
        source,
        `"${lab.app.command}": its program is not in labs/${lab.id}/image, labs/_common/rootfs or labs/_base/packages.txt`,
      );
      if (!source.startsWith('package '))
        assert.ok(statSync(source).mode & 0o100, `${source} is not executable`);
      // Other paths in the command that the lab's image or the common files must provide.
      for (const m of lab.app.command.matchAll(/(\/(?:opt|usr\/local|srv)\/[\w./-]+)/g)) {
        const p = m[1]!;
        const found = imageRoots(lab.id)
          .map((root) => join(root, p))
          .find(existsSync);
        assert.ok(found, `${p} is not in labs/${lab.id}/image nor labs/_common/rootfs`);
      }
    });
  }

  it('ship executable scripts', () => {
    const scripts = [
      '_common/rootfs/usr/local/sbin/lab-init',
      '_common/rootfs/usr/local/bin/lab-shell',
      '_common/rootfs/usr/local/bin/box-idle',
      '_common/rootfs/usr/local/lib/containerlabs/box-start',
      'namespaces/image/opt/lab/box-app.sh',
      'cgroups/image/usr/local/bin/cgroup-info',
      'cgroups/image/usr/local/bin/mem-hog',
      'cgroups/image/usr/local/bin/cpu-spin',
      'cgroups/image/usr/local/bin/fork-bomb',
    ];
    for (const s of scripts) assert.ok(statSync(join(LABS_DIR, s)).mode & 0o100, `${s} is not executable`);
  });
});
