/**
 * The disk of the test hosts: a Debian guest built from Debian packages only, cached by a
 * hash of everything that goes into it.
 *
 *   node hosts/build.ts [--force]      build what is missing, print where it is
 *
 * Two stages, each cached under CACHE_DIR (.cache/hosts/ by default, git-ignored):
 * 1. `rootfs-<hash>.tar`: `mmdebstrap --variant=minbase` of SUITE with PACKAGES, from the
 *    mirror apt uses here. Its hash covers the suite and the package list.
 * 2. `disk-<hash>/`: that tree plus hosts/guest/ and our AppArmor profile, configured by
 *    hosts/guest-setup.sh in a chroot, made into an ext4 image (`mkfs.ext4 -d`, no
 *    partition table) with the kernel and initrd beside it for QEMU's -kernel/-initrd.
 *    Its hash covers stage 1 and every file copied in.
 * Older stages are removed once a new one is complete. Needs root (mmdebstrap, chroot,
 * file ownership in the image) and the Debian packages mmdebstrap and e2fsprogs.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  copyFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { debianMirror } from '../labs/build-images.ts';
import { listTree } from '../labs/images.ts';

export const HOSTS_DIR: string = import.meta.dirname;
const ROOT = join(HOSTS_DIR, '..');
/** Our lab hosts' AppArmor profile: installed in the guest like scripts/setup.sh loads it. */
export const APPARMOR_PROFILE_FILE = join(ROOT, 'labs', 'apparmor', 'containerlabs-labhost');

/** Debian 13: the current Debian, with its docker.io (26.1), systemd 257, cgroup v2 only. */
export const SUITE = 'trixie';
/**
 * The guest's packages. The engine and its runtime from Debian (docker.io pulls containerd
 * and runc), AppArmor, what a rootless engine needs (rootlesskit, slirp4netns, uidmap,
 * dbus-user-session for the user manager), and the QEMU guest agent, through which the
 * host runs commands in the guest without any network.
 */
export const PACKAGES: readonly string[] = Object.freeze([
  'systemd',
  'systemd-sysv',
  'udev',
  'dbus',
  'dbus-user-session',
  'linux-image-amd64',
  'apparmor',
  'docker.io',
  'docker-cli',
  'iptables',
  'iproute2',
  'procps',
  'kmod',
  'rootlesskit',
  'slirp4netns',
  'uidmap',
  'qemu-guest-agent',
]);
/** Bump when the recipe changes in a way the inputs below do not show. */
const RECIPE = 'containerlabs-hosts-v1';
const DISK_SIZE = '8G';

export function defaultCacheDir(): string {
  return join(ROOT, '.cache', 'hosts');
}

export interface HostImage {
  /** The disk's folder, `<cache>/disk-<hash>`. */
  dir: string;
  hash: string;
  /** ext4 image of the whole root filesystem (read-only base: VMs write to an overlay). */
  disk: string;
  kernel: string;
  initrd: string;
  /** How long the build took, or 0 when it was cached. */
  builtSeconds: { rootfs: number; disk: number };
}

function sha(text: string | Buffer): string {
  return createHash('sha256').update(text).digest('hex');
}

export function rootfsHash(): string {
  return sha([RECIPE, SUITE, ...PACKAGES].join('\n')).slice(0, 12);
}

export function diskHash(): string {
  const parts = [RECIPE, DISK_SIZE, rootfsHash()];
  for (const i of listTree(join(HOSTS_DIR, 'guest')))
    parts.push(`guest/${i.path}\t${i.kind}\t${i.mode}\t${i.sha256}`);
  parts.push(`guest-setup.sh\t${sha(readFileSync(join(HOSTS_DIR, 'guest-setup.sh')))}`);
  parts.push(`apparmor\t${sha(readFileSync(APPARMOR_PROFILE_FILE))}`);
  return sha(parts.join('\n')).slice(0, 12);
}

function run(cmd: string, args: string[], log: (line: string) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const tail: string[] = [];
    const keep = (chunk: Buffer) => {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (!line.trim()) continue;
        tail.push(line);
        if (tail.length > 30) tail.shift();
        log(line);
      }
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve() : reject(new Error(`${cmd} exited with ${code}:\n${tail.join('\n')}`)),
    );
  });
}

function needRoot(): void {
  if (process.getuid?.() !== 0) {
    throw new Error('building the test hosts needs root (mmdebstrap, chroot): run it as root on Debian');
  }
  for (const [bin, pkg] of [
    ['/usr/bin/mmdebstrap', 'mmdebstrap'],
    ['/usr/sbin/mkfs.ext4', 'e2fsprogs'],
  ] as const) {
    if (!existsSync(bin))
      throw new Error(`${bin} is missing: apt-get install ${pkg} (scripts/setup.sh hosts)`);
  }
}

/** Removes the other versions of one stage (`rootfs-*.tar`, `disk-*`) once a new one is whole. */
function removeOthers(cacheDir: string, prefix: string, keep: string): void {
  for (const name of readdirSync(cacheDir)) {
    if (name.startsWith(prefix) && name !== keep)
      rmSync(join(cacheDir, name), { recursive: true, force: true });
  }
}

async function ensureRootfs(cacheDir: string, force: boolean, log: (l: string) => void): Promise<number> {
  const file = join(cacheDir, `rootfs-${rootfsHash()}.tar`);
  if (existsSync(file) && !force) return 0;
  needRoot();
  const t0 = performance.now();
  const mirror = debianMirror().replace(/\/+$/, '');
  const partial = `${file}.partial`;
  log(`mmdebstrap ${SUITE} from ${mirror} (${PACKAGES.length} packages)`);
  await run(
    'mmdebstrap',
    [
      '--variant=minbase',
      `--include=${PACKAGES.join(',')}`,
      '--format=tar',
      SUITE,
      partial,
      `deb ${mirror} ${SUITE} main`,
    ],
    (l) => {
      if (/^(I|E|W): /.test(l)) log(`  ${l}`);
    },
  );
  renameSync(partial, file);
  removeOthers(cacheDir, 'rootfs-', `rootfs-${rootfsHash()}.tar`);
  return (performance.now() - t0) / 1000;
}

async function ensureDisk(cacheDir: string, force: boolean, log: (l: string) => void): Promise<number> {
  const hash = diskHash();
  const dir = join(cacheDir, `disk-${hash}`);
  if (existsSync(join(dir, 'complete')) && !force) return 0;
  needRoot();
  const t0 = performance.now();
  const work = join(cacheDir, `work-${process.pid}`);
  const tree = join(work, 'rootfs');
  rmSync(work, { recursive: true, force: true });
  mkdirSync(tree, { recursive: true });
  try {
    log(`disk ${hash}: unpacking the root filesystem`);
    await run(
      'tar',
      ['--numeric-owner', '-xpf', join(cacheDir, `rootfs-${rootfsHash()}.tar`), '-C', tree],
      log,
    );
    cpSync(join(HOSTS_DIR, 'guest'), tree, { recursive: true });
    // In /etc/apparmor.d/, apparmor.service loads it at every boot (as an operator who
    // followed the README has it: loaded by setup, kept across reboots).
    copyFileSync(APPARMOR_PROFILE_FILE, join(tree, 'etc', 'apparmor.d', 'containerlabs-labhost'));
    copyFileSync(join(HOSTS_DIR, 'guest-setup.sh'), join(tree, 'guest-setup.sh'));
    chmodSync(join(tree, 'guest-setup.sh'), 0o755);
    await run('chroot', [tree, '/guest-setup.sh'], log);
    rmSync(join(tree, 'guest-setup.sh'));
    const boot = readdirSync(join(tree, 'boot'));
    const kernel = boot.find((n) => n.startsWith('vmlinuz-'));
    const initrd = boot.find((n) => n.startsWith('initrd.img-'));
    if (!kernel || !initrd) throw new Error(`no kernel or initrd in /boot: ${boot.join(' ')}`);
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    copyFileSync(join(tree, 'boot', kernel), join(dir, 'vmlinuz'));
    copyFileSync(join(tree, 'boot', initrd), join(dir, 'initrd.img'));
    log(`disk ${hash}: mkfs.ext4 -d (${DISK_SIZE}, sparse)`);
    await run('mkfs.ext4', ['-q', '-F', '-L', 'clhost', '-d', tree, join(dir, 'disk.raw'), DISK_SIZE], log);
    writeFileSync(
      join(dir, 'manifest.json'),
      `${JSON.stringify({ suite: SUITE, packages: PACKAGES, kernel, rootfs: rootfsHash(), disk: hash }, null, 2)}\n`,
    );
    writeFileSync(join(dir, 'complete'), '');
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  removeOthers(cacheDir, 'disk-', `disk-${hash}`);
  return (performance.now() - t0) / 1000;
}

/** Builds what is missing (or everything with `force`) and says where the disk is. */
export async function ensureHostImage(
  opts: { cacheDir?: string; force?: boolean; log?: (line: string) => void } = {},
): Promise<HostImage> {
  const cacheDir = opts.cacheDir ?? defaultCacheDir();
  const log = opts.log ?? ((l: string) => console.log(l));
  mkdirSync(cacheDir, { recursive: true });
  const rootfs = await ensureRootfs(cacheDir, opts.force ?? false, log);
  const disk = await ensureDisk(cacheDir, opts.force === true || rootfs > 0, log);
  const hash = diskHash();
  const dir = join(cacheDir, `disk-${hash}`);
  return {
    dir,
    hash,
    disk: join(dir, 'disk.raw'),
    kernel: join(dir, 'vmlinuz'),
    initrd: join(dir, 'initrd.img'),
    builtSeconds: { rootfs, disk },
  };
}

if (import.meta.main) {
  const { values } = parseArgs({ options: { force: { type: 'boolean', default: false } } });
  const img = await ensureHostImage({ force: values.force });
  const took = img.builtSeconds;
  console.log(
    `host disk ${img.hash}: ${img.disk}` +
      (took.rootfs || took.disk
        ? ` (built: rootfs ${took.rootfs.toFixed(0)} s, disk ${took.disk.toFixed(0)} s)`
        : ' (cached)'),
  );
}
