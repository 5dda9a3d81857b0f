/**
 * A writer for the cpio "newc" format, the one the Linux kernel unpacks as an initramfs
 * (Documentation/driver-api/early-userspace/buffer-format.rst). Pure: entries in, bytes out,
 * so the guest's image is the same bytes for the same inputs (mtime 0, fixed inode numbers).
 */

export type CpioEntry =
  | { type: 'dir'; path: string; mode: number; uid?: number; gid?: number }
  | { type: 'file'; path: string; mode: number; data: Uint8Array; uid?: number; gid?: number }
  | { type: 'symlink'; path: string; target: string }
  | { type: 'char'; path: string; mode: number; major: number; minor: number };

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const S_IFCHR = 0o020000;

const enc = new TextEncoder();

function hex8(n: number): string {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new RangeError(`cpio field out of range: ${n}`);
  return n.toString(16).padStart(8, '0');
}

function pad4(n: number): number {
  return (4 - (n % 4)) % 4;
}

/** Paths are stored without a leading slash, as `cpio -H newc` writes them. */
export function normalisePath(p: string): string {
  const parts = p.split('/').filter((s) => s !== '' && s !== '.');
  if (parts.some((s) => s === '..')) throw new Error(`cpio path must not contain "..": ${p}`);
  return parts.join('/') || '.';
}

/**
 * The archive of `entries` in the order given (a directory must come before what it holds),
 * ended by the TRAILER!!! record.
 */
export function writeCpio(entries: readonly CpioEntry[]): Uint8Array {
  const chunks: Uint8Array[] = [];
  let size = 0;
  const push = (b: Uint8Array) => {
    chunks.push(b);
    size += b.byteLength;
  };
  let ino = 1;
  const record = (
    name: string,
    mode: number,
    data: Uint8Array,
    extra: Partial<Record<'uid' | 'gid' | 'rmaj' | 'rmin', number>> = {},
  ) => {
    const nameBytes = enc.encode(`${name}\0`);
    const header =
      '070701' +
      hex8(ino++) +
      hex8(mode) +
      hex8(extra.uid ?? 0) +
      hex8(extra.gid ?? 0) +
      hex8(1) + // nlink
      hex8(0) + // mtime: fixed, so equal inputs give equal bytes
      hex8(data.byteLength) +
      hex8(0) +
      hex8(0) +
      hex8(extra.rmaj ?? 0) +
      hex8(extra.rmin ?? 0) +
      hex8(nameBytes.byteLength) +
      hex8(0); // check
    const h = enc.encode(header);
    push(h);
    push(nameBytes);
    push(new Uint8Array(pad4(h.byteLength + nameBytes.byteLength)));
    push(data);
    push(new Uint8Array(pad4(data.byteLength)));
  };
  for (const e of entries) {
    const name = normalisePath(e.path);
    switch (e.type) {
      case 'dir':
        record(name, S_IFDIR | (e.mode & 0o7777), new Uint8Array(0), { uid: e.uid, gid: e.gid });
        break;
      case 'file':
        record(name, S_IFREG | (e.mode & 0o7777), e.data, { uid: e.uid, gid: e.gid });
        break;
      case 'symlink':
        record(name, S_IFLNK | 0o777, enc.encode(e.target));
        break;
      case 'char':
        record(name, S_IFCHR | (e.mode & 0o7777), new Uint8Array(0), { rmaj: e.major, rmin: e.minor });
        break;
    }
  }
  ino = 0;
  record('TRAILER!!!', 0, new Uint8Array(0));
  const out = new Uint8Array(size);
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.byteLength;
  }
  return out;
}
