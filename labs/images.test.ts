import assert from 'node:assert/strict';
import { chmodSync, cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import {
  baseImageTag,
  basePackages,
  LABS_DIR,
  labImagePlan,
  labImageTag,
  listTree,
  missingImageHint,
} from './images.ts';

// A private copy of labs/ to change files in.
const copy = mkdtempSync(join(tmpdir(), 'labs-images-test-'));
cpSync(LABS_DIR, copy, { recursive: true, filter: (src) => !src.includes('node_modules') });
after(() => rmSync(copy, { recursive: true, force: true }));

describe('image tags', () => {
  it('look like containerlabs/lab-<id>:<12 hex> and containerlabs/base:<12 hex>', () => {
    assert.match(labImageTag('processes'), /^containerlabs\/lab-processes:[0-9a-f]{12}$/);
    assert.match(baseImageTag(), /^containerlabs\/base:[0-9a-f]{12}$/);
  });

  it('are stable: the same files give the same tags', () => {
    assert.equal(labImageTag('processes', copy), labImageTag('processes'));
    assert.equal(baseImageTag(copy), baseImageTag());
  });

  it('differ between labs', () => {
    assert.notEqual(labImageTag('processes'), labImageTag('cgroups'));
  });

  it("change when a lab's image file, its mode, or a common file changes", () => {
    const before = labImageTag('processes', copy);
    const page = join(copy, 'processes', 'image', 'srv', 'www', 'index.html');
    writeFileSync(page, 'changed');
    const afterContent = labImageTag('processes', copy);
    assert.notEqual(afterContent, before);
    chmodSync(page, 0o755);
    const afterMode = labImageTag('processes', copy);
    assert.notEqual(afterMode, afterContent);
    const otherBefore = labImageTag('cgroups', copy);
    writeFileSync(join(copy, '_common', 'rootfs', 'etc', 'bash.bashrc'), '# changed\n');
    assert.notEqual(labImageTag('cgroups', copy), otherBefore);
  });

  it('change when an empty folder is added (it would exist in the image)', () => {
    const before = labImageTag('namespaces', copy);
    mkdirSync(join(copy, 'namespaces', 'image', 'new-empty-dir'));
    assert.notEqual(labImageTag('namespaces', copy), before);
  });

  it('do not change with lab.yaml (it reaches the lab host at run time)', () => {
    const before = labImageTag('cgroups', copy);
    writeFileSync(join(copy, 'cgroups', 'lab.yaml'), '# edited\n', { flag: 'a' });
    assert.equal(labImageTag('cgroups', copy), before);
  });

  it('follow the base: a new package list changes base and lab tags', () => {
    const base = baseImageTag(copy);
    const lab = labImageTag('processes', copy);
    writeFileSync(join(copy, '_base', 'packages.txt'), 'strace\n', { flag: 'a' });
    assert.notEqual(baseImageTag(copy), base);
    assert.notEqual(labImageTag('processes', copy), lab);
    assert.equal(labImagePlan('processes', copy).baseTag, baseImageTag(copy));
  });

  it('refuse a bad lab id', () => {
    assert.throws(() => labImageTag('../etc'), /bad lab id/);
  });
});

describe('inputs', () => {
  it('lists the base packages without comments', () => {
    const pkgs = basePackages();
    for (const p of ['procps', 'util-linux', 'iproute2', 'busybox']) assert.ok(pkgs.includes(p), p);
    assert.ok(pkgs.every((p) => !p.includes('#') && p === p.trim() && p.length > 0));
  });

  it('lists trees with kinds and the execute bit', () => {
    const tree = listTree(join(LABS_DIR, '_common', 'rootfs'));
    const init = tree.find((i) => i.path === 'usr/local/sbin/lab-init');
    assert.equal(init?.kind, 'file');
    assert.equal(init?.mode, 'x');
    assert.ok(tree.some((i) => i.path === 'usr/local/sbin' && i.kind === 'dir'));
    assert.deepEqual(listTree(join(LABS_DIR, 'no-such-folder')), []);
  });

  it('explains a missing image', () => {
    assert.match(missingImageHint('processes', 'containerlabs/lab-processes:x'), /npm run images/);
  });
});
