/**
 * `node vm/build.ts` (the first step of `npm run build`): builds the in-browser VM's files
 * into `.cache/vm/builds/<hash>/`, where <hash> covers every input (vm/README.md): the
 * recipe, the guest's scripts, the lab files, the exact Debian package versions and v86.
 * A second run with the same inputs does no work. The site build (src/integrations/vm-assets.ts)
 * copies the result into dist/vm/.
 *
 *   node vm/build.ts              build what is missing (prints what it did)
 *   node vm/build.ts --force      rebuild even if the hash is built
 *   node vm/build.ts --if-possible  the npm run build form: on a machine without apt
 *                                 (not Debian) say so and exit 0; the site then has no
 *                                 in-browser mode and its lab blocks say why
 */

import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { constants, zstdCompressSync } from 'node:zlib';
import { loadAllLabs } from '../labs/load.ts';
import type { LabDef } from '../labs/schema.ts';
import * as recipe from './guest.ts';
import { Apt, hasApt, type ResolvedPackage } from './lib/apt.ts';
import { NodeVm, readBootFiles, V86_DIR } from './lib/boot.ts';
import { writeCpio } from './lib/cpio.ts';
import { type VmManifest, writeCurrent } from './lib/manifest.ts';
import { buildNotices, type PackageNotice, snapshotUrl } from './lib/notices.ts';
import { assembleRootfs, labEnv, vmMemoryLimit } from './lib/rootfs.ts';

const ROOT = path.resolve(import.meta.dirname, '..');
const CACHE = path.join(ROOT, '.cache', 'vm');

const log = (s: string) => process.stderr.write(`[vm] ${s}\n`);
const ms = (t0: number) => `${((performance.now() - t0) / 1000).toFixed(1)} s`;

/** The labs that run in the browser. */
export async function browserLabs(): Promise<LabDef[]> {
  return (await loadAllLabs(path.join(ROOT, 'labs'))).filter((l) => l.modes.includes('browser'));
}

function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out.push(p);
    }
  };
  walk(dir);
  return out;
}

/** The build's hash: everything that changes the bytes of a state or of the files beside it. */
function inputsHash(labs: readonly LabDef[], packages: readonly ResolvedPackage[]): string {
  const h = createHash('sha256');
  const add = (label: string, data: string | Buffer) => {
    h.update(`${label}\0${data.length}\0`);
    h.update(data);
  };
  const files = [
    ...filesUnder(path.join(ROOT, 'vm', 'guest')),
    ...filesUnder(path.join(ROOT, 'vm', 'lib')).filter((f) => !f.endsWith('.test.ts')),
    path.join(ROOT, 'vm', 'guest.ts'),
    path.join(ROOT, 'vm', 'build.ts'),
    path.join(ROOT, 'server', 'src', 'inspect', 'snapshot.ts'),
    path.join(ROOT, 'src', 'lib', 'vm', 'agent-channel.ts'),
    path.join(ROOT, 'src', 'lib', 'vm', 'machine-options.ts'),
    ...filesUnder(path.join(ROOT, 'labs', '_common', 'rootfs')),
    ...labs.flatMap((l) => filesUnder(path.join(ROOT, 'labs', l.id, 'image'))),
  ];
  for (const f of files) {
    const mode = statSync(f).mode & 0o111 ? 'x' : '-';
    add(`${path.relative(ROOT, f)} ${mode}`, readFileSync(f));
  }
  for (const l of labs) add(`lab ${l.id}`, labEnv(l));
  for (const p of packages) add('deb', `${p.name}=${p.version} ${p.sha256}`);
  add('v86', JSON.parse(readFileSync(path.join(V86_DIR, 'package.json'), 'utf8')).version);
  return h.digest('hex').slice(0, 16);
}

function resolvePackages(apt: Apt): { packages: ResolvedPackage[]; kernel: ResolvedPackage } {
  const names = [...recipe.PACKAGES, recipe.BIOS_PACKAGE];
  const shown = apt.showAll(names);
  const meta = shown.find((p) => p.name === 'linux-image-686');
  // The meta-package depends on the current kernel package of the suite.
  const dep = meta && /linux-image-[0-9][^\s,(]*/.exec(meta.depends)?.[0];
  if (!dep) throw new Error(`linux-image-686 depends on no linux-image-*: ${meta?.depends}`);
  const kernel = apt.show(dep);
  const packages = shown.map((p) => (p === meta ? kernel : p));
  return { packages, kernel };
}

const compress = (b: Uint8Array) =>
  zstdCompressSync(b, {
    params: { [constants.ZSTD_c_compressionLevel]: 19, [constants.ZSTD_c_checksumFlag]: 1 },
  });

async function build(force: boolean): Promise<VmManifest> {
  const t0 = performance.now();
  const labs = await browserLabs();
  const apt = new Apt(path.join(CACHE, 'apt'), log);
  apt.configure();
  apt.update();
  const { packages, kernel } = resolvePackages(apt);
  const hash = inputsHash(labs, packages);
  const out = path.join(CACHE, 'builds', hash);
  const manifestFile = path.join(out, 'manifest.json');
  if (!force && existsSync(manifestFile)) {
    const m = JSON.parse(readFileSync(manifestFile, 'utf8')) as VmManifest;
    writeCurrent(CACHE, m);
    log(`up to date: ${hash} (${labs.map((l) => l.id).join(', ')}; ${ms(t0)})`);
    return m;
  }
  log(`building ${hash}: ${labs.length} labs, kernel ${kernel.name} ${kernel.version}`);

  // 1. The packages, unpacked side by side into one tree (never installed, never run here).
  const debDir = path.join(CACHE, 'debs');
  const work = path.join(CACHE, 'work', hash);
  const tree = path.join(work, 'tree');
  // Earlier builds' leftovers (an interrupted build) go first.
  rmSync(path.join(CACHE, 'work'), { recursive: true, force: true });
  mkdirSync(tree, { recursive: true });
  let t = performance.now();
  for (const p of packages) {
    const deb = apt.download(p, debDir);
    execFileSync('dpkg-deb', ['-x', deb, tree]);
  }
  log(`packages: ${packages.length} downloaded and unpacked (${ms(t)})`);

  // 2. The initramfs.
  t = performance.now();
  const rootfs = assembleRootfs({ tree, labs });
  const initrd = writeCpio(rootfs.entries);
  writeFileSync(path.join(work, 'initrd.cpio'), initrd);
  log(`initramfs: ${rootfs.entries.length} entries, ${(initrd.byteLength / 1e6).toFixed(1)} MB (${ms(t)})`);

  const files = readBootFiles({
    bios: path.join(tree, recipe.BIOS_FILES.bios),
    vgaBios: path.join(tree, recipe.BIOS_FILES.vgaBios),
    kernel: path.join(tree, 'boot', `vmlinuz-${rootfs.kernelVersion}`),
    initrd: path.join(work, 'initrd.cpio'),
  });

  // 3. One cold boot, saved in memory; then each lab from it.
  t = performance.now();
  // WARNING: now and then a cold boot reaches "init: ready" but its agent never answers
  // (seen on a loaded machine; the cause is not known yet). A good boot takes 15-60 s here,
  // so one that has not answered in 4 minutes is dropped and booted again, up to 3 times.
  let vm: NodeVm | undefined;
  for (let attempt = 1; !vm; attempt++) {
    const candidate = await NodeVm.start({ files });
    try {
      await candidate.waitForAgent(240_000);
      vm = candidate;
    } catch (err) {
      await candidate.stop();
      if (attempt >= 3) throw err;
      log(
        `cold boot ${attempt} failed, booting again: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`,
      );
    }
  }
  const base = await vm.save();
  await vm.stop();
  const bootSeconds = (performance.now() - t) / 1000;
  log(`cold boot to the agent: ${bootSeconds.toFixed(1)} s`);

  const site = path.join(work, 'site');
  mkdirSync(site, { recursive: true });
  const named = (name: string, ext: string, data: Uint8Array) => {
    const digest = createHash('sha256').update(data).digest('hex').slice(0, 12);
    const file = `${name}.${digest}.${ext}`;
    writeFileSync(path.join(site, file), data);
    return { file, bytes: data.byteLength };
  };
  const bios = named('bios', 'bin', files.bios);
  const vgaBios = named('vgabios', 'bin', files.vgaBios);
  const states: VmManifest['labs'] = {};
  for (const lab of labs) {
    t = performance.now();
    const v = await NodeVm.start({ files, state: base });
    await v.waitForAgent(300_000);
    const started = await v.agent.request(`lab ${lab.id}`, { timeoutMs: 600_000 });
    if (started.status !== 0)
      throw new Error(
        `lab ${lab.id} did not start in the VM (status ${started.status}); the VM's screen:\n${v.screen()}\n${new TextDecoder().decode(started.output)}`,
      );
    for (let port = 0; port < lab.terminals.length; port++) await v.waitForPrompt(port, 300_000);
    const prepared = await v.agent.request('prepare-save', { timeoutMs: 600_000 });
    if (prepared.status !== 0) throw new Error(`prepare-save failed in lab ${lab.id}`);
    const raw = new Uint8Array(await v.save());
    await v.stop();
    const tz = performance.now();
    const zst = compress(raw);
    const state = named(lab.id, 'state.zst', zst);
    states[lab.id] = {
      ...state,
      rawBytes: raw.byteLength,
      memoryLimitBytes: vmMemoryLimit(lab),
      user: lab.vm.user,
    };
    log(
      `lab ${lab.id}: state ${(raw.byteLength / 1e6).toFixed(1)} MB → ${(zst.byteLength / 1e6).toFixed(1)} MB zstd (zstd ${ms(tz)}, lab ${ms(t)})`,
    );
  }

  // 4. Licences: the notices of every package with files in the guest, and their sources.
  t = performance.now();
  const notices: PackageNotice[] = buildNotices({ tree, packages, debDir, guestFiles: rootfs.fromPackages });
  const srcDir = path.join(CACHE, 'sources');
  const elsewhere = new Set<string>();
  for (const n of notices) {
    try {
      n.sourceFiles = apt.downloadSource(n.source, n.sourceVersion, srcDir);
    } catch (err) {
      // WARNING: a copy of the site built here then serves these sources from Debian's
      // archive, not beside the binaries; build where the mirror has them to ship them all.
      n.sourceElsewhere = snapshotUrl(n.source, n.sourceVersion);
      elsewhere.add(`${n.source}=${n.sourceVersion}`);
      if (!(err instanceof Error)) throw err;
    }
  }
  if (elsewhere.size > 0)
    log(
      `WARNING: apt could not fetch ${elsewhere.size} source packages (${[...elsewhere].join(', ')}); the licences page links them at snapshot.debian.org instead`,
    );
  log(
    `licences: ${notices.length} packages, their ${new Set(notices.map((n) => n.source)).size} source packages (${ms(t)})`,
  );

  const manifest: VmManifest = {
    hash,
    builtAt: new Date().toISOString(),
    v86: JSON.parse(readFileSync(path.join(V86_DIR, 'package.json'), 'utf8')).version,
    memoryBytes: recipe.MEMORY_BYTES,
    vgaMemoryBytes: recipe.VGA_MEMORY_BYTES,
    kernel: `${kernel.name} ${kernel.version}`,
    bios,
    vgaBios,
    labs: states,
    notices,
    figures: {
      coldBootSeconds: bootSeconds,
      initrdBytes: initrd.byteLength,
      buildSeconds: (performance.now() - t0) / 1000,
    },
  };
  writeFileSync(path.join(work, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  // Only a complete build gets its hash's name.
  rmSync(out, { recursive: true, force: true });
  mkdirSync(path.dirname(out), { recursive: true });
  mkdirSync(out);
  renameSync(site, path.join(out, 'site'));
  copyFileSync(path.join(work, 'manifest.json'), manifestFile);
  rmSync(work, { recursive: true, force: true });
  writeCurrent(CACHE, manifest);
  log(`done: ${hash} in ${ms(t0)}`);
  return manifest;
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: {
      force: { type: 'boolean', default: false },
      'if-possible': { type: 'boolean', default: false },
    },
  });
  if (!hasApt()) {
    const msg =
      'the in-browser VM is built from Debian packages with apt-get and dpkg-deb, which this machine lacks: the site is built without it (its lab blocks say so). Build on Debian (or in CI) to get it.';
    if (values['if-possible']) {
      log(`skipped: ${msg}`);
      writeCurrent(CACHE, undefined, msg);
      process.exit(0);
    }
    log(msg);
    process.exit(1);
  }
  build(values.force ?? false).then(
    () => process.exit(0),
    (err: unknown) => {
      log(`failed: ${err instanceof Error ? err.message : String(err)}`);
      writeCurrent(
        CACHE,
        undefined,
        `the VM build failed: ${err instanceof Error ? err.message : String(err)}`,
      );
      process.exit(1);
    },
  );
}
