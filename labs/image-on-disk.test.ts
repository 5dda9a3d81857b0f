import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { gzipSync } from 'node:zlib';
import {
  engineSocket,
  type ImageOnDisk,
  imageOnDisk,
  summariseSavedImage,
  type TarHeader,
  TarReader,
} from './image-on-disk.ts';

// A minimal ustar writer for the tests: regular files, directories, char devices, and a
// PAX header for names longer than 100 bytes.
function header(path: string, size: number, flag: string): Buffer {
  const h = Buffer.alloc(512);
  h.write(path.slice(0, 100), 0);
  h.write('0000644\0', 100);
  h.write('0000000\0', 108);
  h.write('0000000\0', 116);
  h.write(`${size.toString(8).padStart(11, '0')}\0`, 124);
  h.write('00000000000\0', 136);
  h.write(flag, 156);
  h.write('ustar\0', 257);
  h.write('00', 263);
  h.fill(' ', 148, 156);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
  return h;
}
const pad = (n: number) => Buffer.alloc((512 - (n % 512)) % 512);
type Entry = { path: string; data?: Buffer | string; type?: 'file' | 'dir' | 'char' };
function tar(entries: Entry[]): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const data = e.data === undefined ? Buffer.alloc(0) : Buffer.from(e.data);
    if (Buffer.byteLength(e.path) > 100) {
      const rec = ` path=${e.path}\n`;
      let len = rec.length + 2;
      while (`${len}${rec}`.length !== len) len++;
      const pax = Buffer.from(`${len}${rec}`);
      parts.push(header('PaxHeader', pax.length, 'x'), pax, pad(pax.length));
    }
    const flag = e.type === 'dir' ? '5' : e.type === 'char' ? '3' : '0';
    parts.push(header(e.path, data.length, flag), data, pad(data.length));
  }
  parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}
async function* chunks(b: Buffer, size: number): AsyncIterable<Buffer> {
  for (let i = 0; i < b.length; i += size) yield b.subarray(i, i + size);
}
const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

const longPath = `usr/share/${'deep/'.repeat(30)}file.txt`;
const layer1 = tar([
  { path: 'etc/', type: 'dir' },
  { path: 'etc/greeting', data: 'hello\n' },
  { path: longPath, data: 'far down\n' },
]);
// Big enough to be treated as a layer whatever the path (over 1 MiB).
const layer2 = tar([
  { path: 'etc/.wh.greeting', data: '' },
  { path: 'opt/blob', data: Buffer.alloc(1024 * 1024 + 10, 7) },
]);
const config = JSON.stringify({
  architecture: 'amd64',
  os: 'linux',
  config: { Entrypoint: ['/usr/local/sbin/lab-init'] },
  rootfs: { type: 'layers', diff_ids: [`sha256:${sha(layer1)}`, `sha256:${sha(layer2)}`] },
});
const configName = `${sha(config)}.json`;
const manifest = JSON.stringify([
  {
    Config: configName,
    RepoTags: ['containerlabs/lab-layers:x'],
    Layers: ['aaa/layer.tar', 'bbb/layer.tar'],
  },
]);
const saved = tar([
  { path: 'aaa/', type: 'dir' },
  { path: 'aaa/layer.tar', data: layer1 },
  { path: 'bbb/', type: 'dir' },
  { path: 'bbb/layer.tar', data: layer2 },
  { path: configName, data: config },
  { path: 'manifest.json', data: manifest },
]);

test('TarReader: names (ustar, PAX), types and bytes, whatever the chunk size', async () => {
  for (const size of [1, 7, 512, 100_000]) {
    const seen: { h: TarHeader; text: string }[] = [];
    const r = new TarReader((h) => {
      const parts: Buffer[] = [];
      return {
        data: (c) => parts.push(Buffer.from(c)),
        end: () => seen.push({ h, text: Buffer.concat(parts).toString() }),
      };
    });
    for await (const c of chunks(layer1, size)) r.write(c);
    assert.equal(r.ended, true, `chunks of ${size}`);
    assert.deepEqual(
      seen.map((s) => [s.h.path, s.h.type, s.text]),
      [
        ['etc/', 'dir', ''],
        ['etc/greeting', 'file', 'hello\n'],
        [longPath, 'file', 'far down\n'],
      ],
    );
  }
});

test('summariseSavedImage: manifest, config and its digest, layers with diff_ids, files and whiteouts', async () => {
  const s = await summariseSavedImage(chunks(saved, 4096));
  assert.equal(s.config.path, configName);
  assert.equal(s.config.digest, `sha256:${sha(config)}`);
  assert.equal(s.configNameIsDigest, true, 'the config file is named by its own digest (the image ID)');
  assert.equal(s.diffIdsMatch, true, "each layer's sha256 is its diff_id");
  assert.deepEqual(
    s.layers.map((l) => [l.path, l.size, l.files]),
    [
      ['aaa/layer.tar', layer1.length, 2],
      ['bbb/layer.tar', layer2.length, 1],
    ],
  );
  assert.deepEqual(s.layers[0]!.sample, ['etc/greeting', longPath]);
  assert.deepEqual(s.layers[1]!.whiteouts, ['etc/.wh.greeting']);
  assert.deepEqual(s.layers[1]!.sample, ['opt/blob'], 'a whiteout is not listed as a file');
  assert.deepEqual(
    s.entries.map((e) => e.path),
    ['aaa/', 'aaa/layer.tar', 'bbb/', 'bbb/layer.tar', configName, 'manifest.json'],
  );
});

test('summariseSavedImage: the OCI layout of Docker 25+, with a small layer and a gzip-compressed one', async () => {
  const gz = gzipSync(layer2);
  const cfg = config;
  const blob = (b: Buffer | string) => `blobs/sha256/${sha(b)}`;
  const oci = tar([
    { path: 'blobs/', type: 'dir' },
    { path: 'blobs/sha256/', type: 'dir' },
    { path: blob(layer1), data: layer1 },
    { path: blob(gz), data: gz },
    { path: blob(cfg), data: cfg },
    { path: 'index.json', data: '{"schemaVersion":2}' },
    { path: 'oci-layout', data: '{"imageLayoutVersion":"1.0.0"}' },
    {
      path: 'manifest.json',
      data: JSON.stringify([{ Config: blob(cfg), RepoTags: ['x:y'], Layers: [blob(layer1), blob(gz)] }]),
    },
  ]);
  const s = await summariseSavedImage(chunks(oci, 1000));
  assert.equal(s.configNameIsDigest, true, 'a blob is named by its digest');
  assert.deepEqual(
    s.layers.map((l) => l.compressed),
    [false, true],
  );
  assert.equal(s.layers[1]!.digest, `sha256:${sha(gz)}`, 'the file as saved');
  assert.equal(s.layers[1]!.diffId, `sha256:${sha(layer2)}`, 'its tar, uncompressed');
  assert.equal(s.diffIdsMatch, true);
  assert.deepEqual(s.layers[1]!.whiteouts, ['etc/.wh.greeting']);
  assert.equal(s.layers[0]!.files, 2, 'a small layer is read too');
});

test('summariseSavedImage: a layer that is not what the config says is reported, not hidden', async () => {
  const wrongConfig = config.replace(sha(layer2), sha('something else'));
  const name = `${sha(wrongConfig)}.json`;
  const s = await summariseSavedImage(
    chunks(
      tar([
        { path: 'aaa/layer.tar', data: layer1 },
        { path: 'bbb/layer.tar', data: layer2 },
        { path: name, data: wrongConfig },
        { path: 'manifest.json', data: manifest.replace(configName, name) },
      ]),
      65536,
    ),
  );
  assert.equal(s.diffIdsMatch, false);
});

test('summariseSavedImage: a cut archive or one without manifest.json is an error', async () => {
  await assert.rejects(summariseSavedImage(chunks(saved.subarray(0, 2000), 512)), /ended early/);
  await assert.rejects(
    summariseSavedImage(chunks(tar([{ path: 'x', data: 'y' }]), 512)),
    /no manifest\.json/,
  );
});

test('imageOnDisk: without an engine, the committed snapshot, marked as such with the reason', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'image-on-disk-'));
  const snapshot: Partial<ImageOnDisk> = {
    source: { kind: 'snapshot', image: 'containerlabs/lab-layers:old', takenAt: '2026-12-01T00:00:00.000Z' },
    layers: [],
  };
  const file = join(dir, 'snap.json');
  writeFileSync(file, JSON.stringify(snapshot));
  const d = await imageOnDisk({
    image: 'containerlabs/lab-layers:new',
    socketPath: join(dir, 'no.sock'),
    snapshotFile: file,
  });
  assert.equal(d.source.kind, 'snapshot');
  assert.equal(
    d.source.image,
    'containerlabs/lab-layers:old',
    'the snapshot names the image it was taken from',
  );
  assert.match(d.source.reason ?? '', /ENOENT|connect/);
  const tcp = await imageOnDisk({
    image: 'x',
    socketPath: engineSocket('tcp://127.0.0.1:2375'),
    snapshotFile: file,
  });
  assert.match(tcp.source.reason ?? '', /not a unix socket/);
});

test('engineSocket: the default socket, a unix:// DOCKER_HOST, nothing for tcp://', () => {
  assert.equal(engineSocket(undefined), '/var/run/docker.sock');
  assert.equal(engineSocket('unix:///run/user/1000/docker.sock'), '/run/user/1000/docker.sock');
  assert.equal(engineSocket('tcp://127.0.0.1:2375'), undefined);
});

test('imageOnDisk: read from the engine once per image ID, then from the cache; a new ID is read again', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'image-on-disk-'));
  const socketPath = join(dir, 'engine.sock');
  let id = `sha256:${'a'.repeat(64)}`;
  let saves = 0;
  // A fake engine: image inspect and docker save, the two calls imageOnDisk makes.
  const engine = createServer((req, res) => {
    if (req.url === `/images/${encodeURIComponent('containerlabs/lab-layers:x')}/json`) {
      res.end(JSON.stringify({ Id: id }));
    } else if (req.url === `/images/${encodeURIComponent('containerlabs/lab-layers:x')}/get`) {
      saves++;
      res.end(saved);
    } else {
      res.statusCode = 404;
      res.end('{}');
    }
  });
  await new Promise<void>((r) => engine.listen(socketPath, r));
  try {
    const o = {
      image: 'containerlabs/lab-layers:x',
      socketPath,
      cacheDir: join(dir, 'cache'),
      snapshotFile: '/nonexistent',
    };
    const first = await imageOnDisk(o);
    assert.equal(first.source.kind, 'build');
    assert.equal(first.diffIdsMatch, true);
    const again = await imageOnDisk(o);
    assert.equal(saves, 1, 'the same image ID is not saved twice');
    assert.deepEqual(again, first);
    assert.deepEqual(readdirSync(join(dir, 'cache')), [`image-on-disk-${'a'.repeat(64)}.json`]);
    id = `sha256:${'b'.repeat(64)}`;
    await imageOnDisk(o);
    assert.equal(saves, 2, 'another image ID is read again');
  } finally {
    await new Promise((r) => engine.close(r));
  }
});
