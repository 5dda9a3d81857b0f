import assert from 'node:assert/strict';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { LABS_DIR } from './images.ts';
import { loadLabs } from './load.ts';

const labs = await loadLabs(LABS_DIR);

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

    it(`${lab.id}: its app command names programs that are in the image`, () => {
      // Paths in the command that the lab's image or the common files must provide.
      for (const m of lab.app.command.matchAll(/(\/(?:opt|usr\/local|srv)\/[\w./-]+)/g)) {
        const p = m[1]!;
        const found = [join(LABS_DIR, lab.id, 'image', p), join(LABS_DIR, '_common', 'rootfs', p)].find(
          existsSync,
        );
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
