/**
 * Downloads of the in-browser VM's files (emulator, BIOS, a lab's saved state) with a real
 * progress count, kept in the Cache API so the next lesson (or a reload) starts without
 * downloading again. Every file name carries a hash of its content (vm/build.ts, Vite), so
 * a cached copy is never stale; entries of older builds are removed when a lab starts.
 */

export const CACHE_NAME = 'container-labs-vm-v1';

export interface VmFileRef {
  url: string;
  bytes: number;
}

export type Progress = (loaded: number, total: number) => void;

/**
 * Reads a response body, reporting every chunk. With the size known (`expected` > 0) each
 * chunk goes straight into one buffer of that size: the tab never holds the state twice
 * (it is most of the tab's memory at the restore, with v86's unpacked copy).
 */
async function readAll(
  res: Response,
  expected: number,
  onChunk: (n: number) => void,
): Promise<Uint8Array<ArrayBuffer>> {
  if (!res.body) {
    const b = new Uint8Array(await res.arrayBuffer());
    onChunk(b.byteLength);
    if (expected > 0 && b.byteLength !== expected)
      throw new Error(`${expected} bytes expected, ${b.byteLength} received`);
    return b;
  }
  const reader = res.body.getReader();
  let out = new Uint8Array(Math.max(expected, 0));
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (size + value.byteLength > out.byteLength) {
      if (expected > 0) throw new Error(`${expected} bytes expected, more received`);
      const grown = new Uint8Array(Math.max(2 * out.byteLength, size + value.byteLength));
      grown.set(out.subarray(0, size));
      out = grown;
    }
    out.set(value, size);
    size += value.byteLength;
    onChunk(value.byteLength);
  }
  if (expected > 0 && size !== expected) throw new Error(`${expected} bytes expected, ${size} received`);
  return size === out.byteLength ? out : out.slice(0, size);
}

async function openCache(): Promise<Cache | undefined> {
  try {
    return typeof caches === 'undefined' ? undefined : await caches.open(CACHE_NAME);
  } catch {
    return undefined; // private windows and file:// pages may have no Cache API
  }
}

export interface FetchedFiles {
  files: Uint8Array<ArrayBuffer>[];
  /** Bytes that came over the network (0: everything came from the cache). */
  downloaded: number;
}

/**
 * Fetches `refs` one after another (the state is the big one; order keeps the progress
 * honest), from the cache when there, else from the network, then stores what was
 * downloaded. `onProgress` counts bytes of all files together.
 */
export async function fetchVmFiles(
  refs: readonly VmFileRef[],
  onProgress: Progress,
  signal?: AbortSignal,
): Promise<FetchedFiles> {
  const total = refs.reduce((n, r) => n + r.bytes, 0);
  let loaded = 0;
  let downloaded = 0;
  const cache = await openCache();
  const files: Uint8Array<ArrayBuffer>[] = [];
  for (const ref of refs) {
    const url = new URL(ref.url, location.href).href;
    const hit = await cache?.match(url).catch(() => undefined);
    if (hit) {
      const b = await readAll(hit, ref.bytes, (n) => {
        loaded += n;
        onProgress(loaded, total);
      });
      files.push(b);
      continue;
    }
    const res = await fetch(url, { signal, credentials: 'same-origin' });
    if (!res.ok) throw new Error(`${ref.url}: the site answered ${res.status}`);
    const b = await readAll(res, ref.bytes, (n) => {
      downloaded += n;
      loaded += n;
      onProgress(loaded, total);
    });
    files.push(b);
    if (cache) {
      // The Response takes its own copy of the bytes.
      const copy = new Response(b, {
        headers: { 'content-type': 'application/octet-stream' },
      });
      await cache.put(url, copy).catch(() => {}); // quota full: the next start downloads again
    }
  }
  return { files, downloaded };
}

/** Removes cached files of older VM builds (any entry not in `keep`). */
export async function pruneVmCache(keep: readonly string[]): Promise<void> {
  const cache = await openCache();
  if (!cache) return;
  const wanted = new Set(keep.map((u) => new URL(u, location.href).href));
  for (const req of await cache.keys()) if (!wanted.has(req.url)) await cache.delete(req);
}

/**
 * Whether this device should try: a VM takes about 100 MiB of guest memory plus the
 * emulator's own, so a phone with 1 GiB (navigator.deviceMemory, Chromium only) is told no
 * rather than having its tab killed.
 */
export function deviceRefusal(nav: Navigator = navigator): string | undefined {
  if (typeof WebAssembly !== 'object')
    return 'This browser has no WebAssembly, which the in-browser lab needs.';
  const mem = (nav as Navigator & { deviceMemory?: number }).deviceMemory;
  if (typeof mem === 'number' && mem < 2)
    return `This device reports ${mem} GB of memory; the in-browser lab needs about 0.4 GB for itself, so it is not started here. Try a computer.`;
  return undefined;
}
