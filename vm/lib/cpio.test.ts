import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type CpioEntry, normalisePath, writeCpio } from './cpio.ts';

/** A newc reader, written from the format's description (not from the writer). */
function readCpio(
  b: Uint8Array,
): { name: string; mode: number; data: Uint8Array; rmaj: number; rmin: number }[] {
  const dec = new TextDecoder();
  const out = [];
  let off = 0;
  for (;;) {
    const h = dec.decode(b.subarray(off, off + 110));
    assert.equal(h.slice(0, 6), '070701', `magic at ${off}`);
    const field = (i: number) => Number.parseInt(h.slice(6 + i * 8, 14 + i * 8), 16);
    const mode = field(1);
    const size = field(6);
    const rmaj = field(9);
    const rmin = field(10);
    const namesize = field(11);
    const name = dec.decode(b.subarray(off + 110, off + 110 + namesize - 1));
    off += 110 + namesize;
    off += (4 - (off % 4)) % 4;
    const data = b.subarray(off, off + size);
    off += size;
    off += (4 - (off % 4)) % 4;
    if (name === 'TRAILER!!!') break;
    out.push({ name, mode, data, rmaj, rmin });
  }
  assert.equal(off, b.byteLength, 'nothing after the trailer');
  return out;
}

test('writes directories, files, symlinks and devices the kernel can unpack', () => {
  const entries: CpioEntry[] = [
    { type: 'dir', path: '/bin', mode: 0o755 },
    { type: 'file', path: '/bin/hello', mode: 0o755, data: new TextEncoder().encode('#!/bin/sh\necho hi\n') },
    { type: 'symlink', path: '/bin/sh', target: 'busybox' },
    { type: 'char', path: '/dev/console', mode: 0o600, major: 5, minor: 1 },
  ];
  const got = readCpio(writeCpio(entries));
  assert.deepEqual(
    got.map((e) => [e.name, e.mode.toString(8)]),
    [
      ['bin', '40755'],
      ['bin/hello', '100755'],
      ['bin/sh', '120777'],
      ['dev/console', '20600'],
    ],
  );
  assert.equal(new TextDecoder().decode(got[1]!.data), '#!/bin/sh\necho hi\n');
  assert.equal(new TextDecoder().decode(got[2]!.data), 'busybox');
  assert.deepEqual([got[3]!.rmaj, got[3]!.rmin], [5, 1]);
});

test('the same entries give the same bytes (no time stamps)', () => {
  const e: CpioEntry[] = [{ type: 'file', path: 'a', mode: 0o644, data: new Uint8Array([1, 2, 3]) }];
  assert.deepEqual(writeCpio(e), writeCpio(e));
});

test('paths lose their leading slash and may not climb out', () => {
  assert.equal(normalisePath('/usr//local/./bin/'), 'usr/local/bin');
  assert.equal(normalisePath('/'), '.');
  assert.throws(() => normalisePath('/etc/../../x'), /\.\./);
});
