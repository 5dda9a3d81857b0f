import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { interpreter, isElf, moduleDepends, neededLibraries } from './elf.ts';

/** A minimal 32-bit little-endian ELF: one PT_LOAD, one PT_DYNAMIC (NEEDED ×2, STRTAB), a PT_INTERP. */
function tinyElf32(): Uint8Array {
  const b = new Uint8Array(512);
  const v = new DataView(b.buffer);
  b.set([0x7f, 0x45, 0x4c, 0x46, 1, 1, 1]);
  v.setUint16(0x10, 3, true); // ET_DYN
  v.setUint32(0x1c, 52, true); // phoff
  v.setUint16(0x2a, 32, true); // phentsize
  v.setUint16(0x2c, 3, true); // phnum
  const ph = (i: number, type: number, offset: number, vaddr: number, filesz: number) => {
    const p = 52 + i * 32;
    v.setUint32(p, type, true);
    v.setUint32(p + 4, offset, true);
    v.setUint32(p + 8, vaddr, true);
    v.setUint32(p + 16, filesz, true);
  };
  const strtab = 300;
  const strings = '\0libfoo.so.1\0libc.so.6\0/lib/ld-linux.so.2\0';
  b.set(new TextEncoder().encode(strings), strtab);
  ph(0, 1, 0, 0x1000, 512); // PT_LOAD: file offset 0 at vaddr 0x1000
  ph(1, 2, 200, 0x1000 + 200, 32); // PT_DYNAMIC
  ph(2, 3, strtab + 23, 0x1000 + strtab + 23, 19); // PT_INTERP
  const dyn = [
    [1, 1],
    [1, 13],
    [5, 0x1000 + strtab],
    [0, 0],
  ];
  dyn.forEach(([t, val], i) => {
    v.setInt32(200 + i * 8, t!, true);
    v.setUint32(204 + i * 8, val!, true);
  });
  return b;
}

test('reads DT_NEEDED and PT_INTERP of a 32-bit ELF', () => {
  const b = tinyElf32();
  assert.ok(isElf(b));
  assert.deepEqual(neededLibraries(b), ['libfoo.so.1', 'libc.so.6']);
  assert.equal(interpreter(b), '/lib/ld-linux.so.2');
});

test("reads this machine's /bin/ls (64-bit): it needs libc and names its loader", () => {
  const ls = '/bin/ls';
  assert.ok(existsSync(ls), 'this test reads /bin/ls');
  const b = readFileSync(ls);
  assert.ok(neededLibraries(b).includes('libc.so.6'));
  assert.match(interpreter(b) ?? '', /ld-linux/);
});

test('a kernel module’s depends= comes from its .modinfo strings', () => {
  const b = tinyElf32();
  const mod = new Uint8Array(b.byteLength + 64);
  mod.set(b);
  mod.set(new TextEncoder().encode('\0license=GPL\0depends=stp,llc\0vermagic=6.1\0'), b.byteLength);
  assert.deepEqual(moduleDepends(mod), ['stp', 'llc']);
  const none = new Uint8Array(b.byteLength + 32);
  none.set(b);
  none.set(new TextEncoder().encode('\0depends=\0name=veth\0'), b.byteLength);
  assert.deepEqual(moduleDepends(none), []);
});

test('refuses what is not ELF', () => {
  assert.equal(isElf(new TextEncoder().encode('#!/bin/sh\n'.padEnd(64))), false);
  assert.throws(() => neededLibraries(new Uint8Array(64)), /not an ELF/);
});
