/**
 * Just enough of ELF to assemble the guest: the shared libraries a program needs
 * (DT_NEEDED, so only the libraries really used go into the initramfs) and the
 * `depends=` of a kernel module's .modinfo (so a module is loaded after the ones it needs).
 * Pure functions over bytes; 32- and 64-bit, little-endian (the guest is i386).
 */

const ELF_MAGIC = [0x7f, 0x45, 0x4c, 0x46];
const PT_DYNAMIC = 2;
const PT_LOAD = 1;
const PT_INTERP = 3;
const DT_NULL = 0;
const DT_NEEDED = 1;
const DT_STRTAB = 5;

export function isElf(b: Uint8Array): boolean {
  return b.byteLength > 52 && ELF_MAGIC.every((m, i) => b[i] === m);
}

interface Header {
  is64: boolean;
  view: DataView;
}

function header(b: Uint8Array): Header {
  if (!isElf(b)) throw new Error('not an ELF file');
  if (b[5] !== 1) throw new Error('only little-endian ELF is supported');
  return { is64: b[4] === 2, view: new DataView(b.buffer, b.byteOffset, b.byteLength) };
}

interface Segment {
  type: number;
  offset: number;
  vaddr: number;
  filesz: number;
}

function segments({ is64, view }: Header): Segment[] {
  const num = (off: number) => (is64 ? Number(view.getBigUint64(off, true)) : view.getUint32(off, true));
  const phoff = num(is64 ? 0x20 : 0x1c);
  const phentsize = view.getUint16(is64 ? 0x36 : 0x2a, true);
  const phnum = view.getUint16(is64 ? 0x38 : 0x2c, true);
  const out: Segment[] = [];
  for (let i = 0; i < phnum; i++) {
    const p = phoff + i * phentsize;
    out.push(
      is64
        ? { type: view.getUint32(p, true), offset: num(p + 8), vaddr: num(p + 16), filesz: num(p + 32) }
        : { type: view.getUint32(p, true), offset: num(p + 4), vaddr: num(p + 8), filesz: num(p + 16) },
    );
  }
  return out;
}

/** The sonames a dynamically linked program or library needs (empty for a static one). */
export function neededLibraries(b: Uint8Array): string[] {
  const h = header(b);
  const { is64, view } = h;
  const segs = segments(h);
  const dyn = segs.find((s) => s.type === PT_DYNAMIC);
  if (!dyn) return [];
  const entSize = is64 ? 16 : 8;
  const entries: [number, number][] = [];
  for (let off = dyn.offset; off + entSize <= dyn.offset + dyn.filesz; off += entSize) {
    const tag = is64 ? Number(view.getBigInt64(off, true)) : view.getInt32(off, true);
    const val = is64 ? Number(view.getBigUint64(off + 8, true)) : view.getUint32(off + 4, true);
    if (tag === DT_NULL) break;
    entries.push([tag, val]);
  }
  const strtabAddr = entries.find(([t]) => t === DT_STRTAB)?.[1];
  if (strtabAddr === undefined) return [];
  // DT_STRTAB is a virtual address: find the loaded segment holding it.
  const load = segs.find(
    (s) => s.type === PT_LOAD && strtabAddr >= s.vaddr && strtabAddr < s.vaddr + s.filesz,
  );
  if (!load) throw new Error('DT_STRTAB outside every PT_LOAD segment');
  const strtab = strtabAddr - load.vaddr + load.offset;
  return entries
    .filter(([t]) => t === DT_NEEDED)
    .map(([, v]) => {
      let end = strtab + v;
      while (end < b.byteLength && b[end] !== 0) end++;
      return new TextDecoder().decode(b.subarray(strtab + v, end));
    });
}

/** The program interpreter (the dynamic loader's path, PT_INTERP), if the file names one. */
export function interpreter(b: Uint8Array): string | undefined {
  const seg = segments(header(b)).find((s) => s.type === PT_INTERP);
  if (!seg) return undefined;
  let end = seg.offset;
  while (end < seg.offset + seg.filesz && b[end] !== 0) end++;
  return new TextDecoder().decode(b.subarray(seg.offset, end));
}

/**
 * The modules a kernel module depends on, from the `depends=` string of its .modinfo
 * section (what depmod reads). Module names as the kernel writes them (`llc`, `stp`).
 */
export function moduleDepends(b: Uint8Array): string[] {
  header(b);
  const needle = new TextEncoder().encode('\0depends=');
  outer: for (let i = 0; i + needle.length < b.byteLength; i++) {
    for (let j = 0; j < needle.length; j++) if (b[i + j] !== needle[j]) continue outer;
    let end = i + needle.length;
    while (end < b.byteLength && b[end] !== 0) end++;
    const s = new TextDecoder().decode(b.subarray(i + needle.length, end));
    return s ? s.split(',').filter(Boolean) : [];
  }
  return [];
}
