/**
 * What an image is on disk, for lesson 8: the files of a real `docker save` of one of our
 * lab images, read as a stream (nothing is written to disk) and summed up: the archive's
 * entries, `manifest.json`, the image configuration, and each layer with its digest, size
 * and some of its files. The digests are computed here, so the lesson can show that the
 * config's name is its own sha256 (the image ID) and that each layer's sha256 is the
 * `diff_id` the config lists.
 *
 * The site's build asks the engine for the lab image (`imageOnDisk`); where no engine
 * answers or the image is missing, it uses the snapshot committed in
 * labs/_data/image-on-disk.json, taken the same way on a real run, and says so.
 *
 *   node labs/image-on-disk.ts --write     # refresh the snapshot from this machine's engine
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createGunzip, type Gunzip } from 'node:zlib';

/** One entry of a tar archive, as much as the summary needs. */
export interface TarHeader {
  path: string;
  size: number;
  /** `file`, `dir`, `symlink`, `link` (hard link), `char` (a whiteout is char 0:0), `other`. */
  type: 'file' | 'dir' | 'symlink' | 'link' | 'char' | 'other';
}

/** Receives one entry's bytes. */
export interface EntrySink {
  data(chunk: Buffer): void;
  end(): void;
}

const BLOCK = 512;

function field(b: Buffer, at: number, len: number): string {
  const s = b.subarray(at, at + len);
  const nul = s.indexOf(0);
  return s.subarray(0, nul === -1 ? len : nul).toString('utf8');
}

function octal(b: Buffer, at: number, len: number): number {
  // GNU base-256 for sizes of 8 GiB and more: high bit set.
  if ((b[at]! & 0x80) !== 0) {
    let n = 0;
    for (let i = at + 1; i < at + len; i++) n = n * 256 + b[i]!;
    return n;
  }
  const s = field(b, at, len).trim();
  return s === '' ? 0 : Number.parseInt(s, 8);
}

const TYPES: Record<string, TarHeader['type']> = {
  '0': 'file',
  '\0': 'file',
  '': 'file',
  '7': 'file',
  '1': 'link',
  '2': 'symlink',
  '3': 'char',
  '5': 'dir',
};

/**
 * A streaming tar reader: feed it chunks in order; for each entry it asks `onEntry`
 * for a sink (or none, to skip the bytes). Understands ustar names with a prefix, PAX
 * `path` records and GNU long names, which is what `docker save` and layer tars use.
 */
export class TarReader {
  readonly #onEntry: (h: TarHeader) => EntrySink | undefined;
  #buf: Buffer = Buffer.alloc(0);
  /** Bytes left of the current entry's data, and of its padding. */
  #left = 0;
  #pad = 0;
  #sink: EntrySink | undefined;
  /** A PAX or GNU long-name record being collected, and the name it gives the next entry. */
  #meta: { kind: 'pax' | 'gnu'; parts: Buffer[] } | undefined;
  #nextPath: string | undefined;
  #ended = false;

  constructor(onEntry: (h: TarHeader) => EntrySink | undefined) {
    this.#onEntry = onEntry;
  }

  write(chunk: Buffer): void {
    this.#buf = this.#buf.length ? Buffer.concat([this.#buf, chunk]) : chunk;
    for (;;) {
      if (this.#ended) return;
      if (this.#left > 0) {
        if (this.#buf.length === 0) return;
        const n = Math.min(this.#left, this.#buf.length);
        const part = this.#buf.subarray(0, n);
        if (this.#meta) this.#meta.parts.push(Buffer.from(part));
        else this.#sink?.data(part);
        this.#buf = this.#buf.subarray(n);
        this.#left -= n;
        if (this.#left === 0) this.#finishEntry();
        continue;
      }
      if (this.#pad > 0) {
        const n = Math.min(this.#pad, this.#buf.length);
        this.#buf = this.#buf.subarray(n);
        this.#pad -= n;
        if (this.#pad > 0) return;
        continue;
      }
      if (this.#buf.length < BLOCK) return;
      const h = this.#buf.subarray(0, BLOCK);
      this.#buf = this.#buf.subarray(BLOCK);
      if (h.every((x) => x === 0)) {
        this.#ended = true;
        return;
      }
      this.#startEntry(h);
    }
  }

  #startEntry(h: Buffer): void {
    const size = octal(h, 124, 12);
    const flag = String.fromCharCode(h[156]!);
    this.#left = size;
    this.#pad = (BLOCK - (size % BLOCK)) % BLOCK;
    if (flag === 'x' || flag === 'L') {
      this.#meta = { kind: flag === 'x' ? 'pax' : 'gnu', parts: [] };
      if (size === 0) this.#finishEntry();
      return;
    }
    const ustar = field(h, 257, 6).startsWith('ustar');
    const prefix = ustar ? field(h, 345, 155) : '';
    const name = field(h, 0, 100);
    const path = this.#nextPath ?? (prefix ? `${prefix}/${name}` : name);
    this.#nextPath = undefined;
    this.#sink = this.#onEntry({ path, size, type: TYPES[flag] ?? 'other' });
    if (size === 0) this.#finishEntry();
  }

  #finishEntry(): void {
    if (this.#meta) {
      const text = Buffer.concat(this.#meta.parts).toString('utf8');
      if (this.#meta.kind === 'gnu') this.#nextPath = text.replace(/\0+$/, '');
      else {
        // PAX records: "<length> <key>=<value>\n".
        for (const m of text.matchAll(/\d+ ([^=]+)=([^\n]*)\n/g)) if (m[1] === 'path') this.#nextPath = m[2];
      }
      this.#meta = undefined;
      return;
    }
    this.#sink?.end();
    this.#sink = undefined;
  }

  /** True once the archive's end marker was read. */
  get ended(): boolean {
    return this.#ended;
  }
}

/** One layer of the saved image. */
export interface LayerSummary {
  /** Its path in the archive (`<id>/layer.tar`, or `blobs/sha256/<hex>` in the OCI layout). */
  path: string;
  size: number;
  /** sha256 of the file as saved (compressed, if it is). */
  digest: string;
  /** Saved gzip-compressed (as the containerd image store keeps pulled layers). */
  compressed: boolean;
  /** sha256 of the uncompressed tar: what the config's `rootfs.diff_ids` lists. */
  diffId: string;
  /** Entries in the layer's own tar, and how many of them are regular files. */
  entries: number;
  files: number;
  /** Up to SAMPLE regular files or symlinks, in archive order. */
  sample: string[];
  /** Whiteouts (`.wh.<name>`): files this layer deletes from the layers below. */
  whiteouts: string[];
}

export interface ImageOnDisk {
  /** Where the figures come from: this build's engine, or the committed snapshot. */
  source: {
    kind: 'build' | 'snapshot';
    image: string;
    takenAt: string;
    /** Why the snapshot was used, when it was. */
    reason?: string;
  };
  /** Every entry of the archive (not of the layers), in its order. */
  entries: { path: string; size: number; type: TarHeader['type'] }[];
  /** `manifest.json`, as saved. */
  manifest: unknown;
  config: {
    path: string;
    size: number;
    /** sha256 of the config file's bytes: the image ID of the classic image store. */
    digest: string;
    /** The configuration, as saved (`history` and all). */
    json: Record<string, unknown>;
  };
  layers: LayerSummary[];
  /** Each layer's diffId equals the config's `rootfs.diff_ids` entry in the same place. */
  diffIdsMatch: boolean;
  /** The config's file name (or blob name) is its own digest. */
  configNameIsDigest: boolean;
}

const SAMPLE = 12;
/** Files up to this size are kept in memory (manifest, config, and perhaps small layers). */
const SMALL = 1024 * 1024;

/**
 * Summing up one layer as its bytes arrive: the digest of the file, and, through gunzip
 * when it is compressed, the digest of its tar and a list of what the tar holds.
 */
class LayerReader {
  readonly #file = createHash('sha256');
  readonly #tar = createHash('sha256');
  readonly #list: TarReader;
  readonly #layer: LayerSummary;
  #gunzip: Gunzip | undefined;
  #started = false;
  #done: Promise<void> = Promise.resolve();

  constructor(path: string, size: number) {
    const layer: LayerSummary = {
      path,
      size,
      digest: '',
      compressed: false,
      diffId: '',
      entries: 0,
      files: 0,
      sample: [],
      whiteouts: [],
    };
    this.#layer = layer;
    this.#list = new TarReader((e) => {
      layer.entries++;
      const base = e.path.split('/').at(-1) ?? '';
      if (base.startsWith('.wh.')) layer.whiteouts.push(e.path);
      else if (e.type === 'file' || e.type === 'symlink') {
        if (e.type === 'file') layer.files++;
        if (layer.sample.length < SAMPLE) layer.sample.push(e.path);
      }
      return undefined;
    });
  }

  #tarBytes(c: Buffer): void {
    this.#tar.update(c);
    this.#list.write(c);
  }

  data(c: Buffer): void {
    if (!this.#started) {
      this.#started = true;
      // gzip magic: 1f 8b.
      if (c[0] === 0x1f && c[1] === 0x8b) {
        this.#layer.compressed = true;
        const gz = createGunzip();
        gz.on('data', (u: Buffer) => this.#tarBytes(u));
        this.#done = new Promise((resolve, reject) => {
          gz.on('end', resolve);
          gz.on('error', reject);
        });
        this.#gunzip = gz;
      }
    }
    this.#file.update(c);
    if (this.#gunzip) this.#gunzip.write(c);
    else this.#tarBytes(c);
  }

  /** The summary, once every byte (and every decompressed byte) is through. */
  async end(): Promise<LayerSummary> {
    this.#gunzip?.end();
    await this.#done;
    this.#layer.digest = `sha256:${this.#file.digest('hex')}`;
    this.#layer.diffId = `sha256:${this.#tar.digest('hex')}`;
    return this.#layer;
  }
}

/** Reads a `docker save` stream into an ImageOnDisk (source left for the caller). */
export async function summariseSavedImage(
  stream: AsyncIterable<Buffer>,
): Promise<Omit<ImageOnDisk, 'source'>> {
  const entries: ImageOnDisk['entries'] = [];
  const small = new Map<string, Buffer>();
  const layers = new Map<string, Promise<LayerSummary>>();
  const outer = new TarReader((h) => {
    entries.push({ path: h.path, size: h.size, type: h.type });
    if (h.type !== 'file') return undefined;
    // Which file is a layer, manifest.json says, and it comes last in the archive: keep
    // small files whole (they may be the manifest, the config or a small layer) and read
    // every big one as a layer while it streams by.
    if (h.size <= SMALL) {
      const parts: Buffer[] = [];
      return { data: (c) => parts.push(Buffer.from(c)), end: () => small.set(h.path, Buffer.concat(parts)) };
    }
    const reader = new LayerReader(h.path, h.size);
    return { data: (c) => reader.data(c), end: () => layers.set(h.path, reader.end()) };
  });
  for await (const chunk of stream) outer.write(chunk);
  if (!outer.ended) throw new Error('the image archive ended early');

  const manifestText = small.get('manifest.json');
  if (!manifestText) throw new Error('the image archive has no manifest.json');
  const manifest = JSON.parse(manifestText.toString('utf8')) as { Config: string; Layers: string[] }[];
  const first = manifest[0];
  if (!first) throw new Error('manifest.json lists no image');
  const configBytes = small.get(first.Config);
  if (!configBytes) throw new Error(`the archive has no ${first.Config}`);
  const configJson = JSON.parse(configBytes.toString('utf8')) as Record<string, unknown>;
  const configDigest = `sha256:${createHash('sha256').update(configBytes).digest('hex')}`;
  const ordered = await Promise.all(
    first.Layers.map((p) => {
      const big = layers.get(p);
      if (big) return big;
      const bytes = small.get(p);
      if (!bytes) throw new Error(`the archive has no layer ${p}`);
      const reader = new LayerReader(p, bytes.length);
      reader.data(bytes);
      return reader.end();
    }),
  );
  const diffIds = ((configJson.rootfs as { diff_ids?: string[] } | undefined)?.diff_ids ?? []) as string[];
  const hex = configDigest.slice('sha256:'.length);
  return {
    entries,
    manifest,
    config: { path: first.Config, size: configBytes.length, digest: configDigest, json: configJson },
    layers: ordered,
    diffIdsMatch: diffIds.length === ordered.length && ordered.every((l, i) => l.diffId === diffIds[i]),
    configNameIsDigest: first.Config === `${hex}.json` || first.Config === `blobs/sha256/${hex}`,
  };
}

/** Streams `GET /images/<name>/get` (what `docker save` asks for) from an engine's unix socket. */
export function saveImage(
  image: string,
  socketPath: string,
  timeoutMs = 60_000,
): Promise<AsyncIterable<Buffer>> {
  return new Promise((resolve, reject) => {
    const req = request(
      { socketPath, path: `/images/${encodeURIComponent(image)}/get`, method: 'GET', timeout: timeoutMs },
      (res) => {
        if (res.statusCode !== 200) {
          res.resume();
          reject(new Error(`the engine answered ${res.statusCode} for ${image}`));
          return;
        }
        resolve(res);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer from the engine within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}

/** `GET /images/<name>/json` (what `docker image inspect` asks for): the image ID. */
export function imageId(image: string, socketPath: string, timeoutMs = 10_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request(
      { socketPath, path: `/images/${encodeURIComponent(image)}/json`, method: 'GET', timeout: timeoutMs },
      (res) => {
        const parts: Buffer[] = [];
        res.on('data', (c: Buffer) => parts.push(c));
        res.on('end', () => {
          if (res.statusCode !== 200) {
            reject(new Error(`the engine answered ${res.statusCode} for ${image}`));
            return;
          }
          const id = (JSON.parse(Buffer.concat(parts).toString('utf8')) as { Id?: unknown }).Id;
          if (typeof id === 'string' && /^sha256:[0-9a-f]{64}$/.test(id)) resolve(id);
          else reject(new Error(`no image ID for ${image}`));
        });
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer from the engine within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}

/** The committed snapshot (labs/_data/image-on-disk.json). */
export const SNAPSHOT_FILE = join(import.meta.dirname, '_data', 'image-on-disk.json');

/** The engine's unix socket from a DOCKER_HOST value (unix:// only; default the usual path). */
export function engineSocket(dockerHost: string | undefined): string | undefined {
  if (!dockerHost) return '/var/run/docker.sock';
  return dockerHost.startsWith('unix://') ? dockerHost.slice('unix://'.length) : undefined;
}

/**
 * The saved image of `image`, read now from the engine at `socketPath`; or, when that
 * fails (no engine, no such image, a TCP DOCKER_HOST), the snapshot in `snapshotFile`
 * with the reason. With a `cacheDir`, a summary is kept per image ID and used again while
 * the engine has that very image: an ID is the digest of the config, which names every
 * layer by its digest, so the same ID means the same bytes.
 */
export async function imageOnDisk(o: {
  image: string;
  socketPath: string | undefined;
  snapshotFile?: string;
  cacheDir?: string;
  now?: () => Date;
}): Promise<ImageOnDisk> {
  const now = o.now ?? (() => new Date());
  try {
    if (!o.socketPath) throw new Error('DOCKER_HOST is not a unix socket');
    const id = await imageId(o.image, o.socketPath);
    const cached = o.cacheDir
      ? join(o.cacheDir, `image-on-disk-${id.slice('sha256:'.length)}.json`)
      : undefined;
    if (cached && existsSync(cached)) return JSON.parse(readFileSync(cached, 'utf8')) as ImageOnDisk;
    const summary = await summariseSavedImage(await saveImage(o.image, o.socketPath));
    const data: ImageOnDisk = {
      source: { kind: 'build', image: o.image, takenAt: now().toISOString() },
      ...summary,
    };
    if (cached && o.cacheDir) {
      mkdirSync(o.cacheDir, { recursive: true });
      writeFileSync(cached, JSON.stringify(data));
    }
    return data;
  } catch (err) {
    const snap = JSON.parse(readFileSync(o.snapshotFile ?? SNAPSHOT_FILE, 'utf8')) as ImageOnDisk;
    return { ...snap, source: { ...snap.source, kind: 'snapshot', reason: (err as Error).message } };
  }
}

if (import.meta.main) {
  const { values } = parseArgs({ options: { write: { type: 'boolean' }, image: { type: 'string' } } });
  const { labImageTag } = await import('./images.ts');
  const image = values.image ?? labImageTag('layers');
  const socketPath = engineSocket(process.env.DOCKER_HOST);
  if (!socketPath) throw new Error('DOCKER_HOST must be a unix:// socket');
  const summary = await summariseSavedImage(await saveImage(image, socketPath));
  const data: ImageOnDisk = {
    source: { kind: 'snapshot', image, takenAt: new Date().toISOString() },
    ...summary,
  };
  const text = `${JSON.stringify(data, null, 2)}\n`;
  if (values.write) {
    writeFileSync(SNAPSHOT_FILE, text);
    console.log(`wrote ${SNAPSHOT_FILE} from ${image}: ${summary.layers.length} layers`);
  } else process.stdout.write(text);
}
