/**
 * Assembles the guest's initramfs: the programs of the recipe (vm/guest.ts) with exactly
 * the libraries they load, busybox for every other command, the lab machinery the Docker
 * lab images get (labs/_common/rootfs), the VM's own scripts (vm/guest/), the kernel-view
 * scripts of the lab server, and each lab's files and settings. The package files come
 * from a folder where the .debs were unpacked (`tree`); nothing is run from them here.
 */
import { existsSync, lstatSync, readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import path from 'node:path';
import { type LabDef, parseSize } from '../../labs/schema.ts';
import { CGROUP_SCRIPT, PROCESS_SCRIPT } from '../../server/src/inspect/snapshot.ts';
import { FILES, MAX_LAB_MEMORY_BYTES, MODULES, PROGRAMS } from '../guest.ts';
import type { CpioEntry } from './cpio.ts';
import { interpreter, isElf, moduleDepends, neededLibraries } from './elf.ts';

const ROOT = path.resolve(import.meta.dirname, '..', '..');
/** Where the dynamic loader of Debian i386 looks, in order. */
const LIB_DIRS = ['/lib/i386-linux-gnu', '/usr/lib/i386-linux-gnu', '/lib', '/usr/lib'];

export interface RootfsInput {
  /** The unpacked packages. */
  tree: string;
  /** The labs the VM runs. */
  labs: readonly LabDef[];
}

export interface Rootfs {
  entries: CpioEntry[];
  /** Guest paths taken from the package tree (for the notices: which package each came from). */
  fromPackages: string[];
  kernelVersion: string;
}

/** The memory limit a lab's cgroup gets in the VM (bytes). */
export function vmMemoryLimit(lab: LabDef): number {
  return Math.min(parseSize(lab.limits.memory), MAX_LAB_MEMORY_BYTES);
}

/** A value for a bash `source`d file, single-quoted. */
export function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** lab.env of one lab: what vm-lab needs from lab.yaml. */
export function labEnv(lab: LabDef): string {
  const vars: Record<string, string> = {
    LAB_APP_CMD: lab.app.command,
    LAB_APP_HOSTNAME: lab.app.hostname,
    LAB_USER: lab.vm.user,
    LAB_MEMORY: String(vmMemoryLimit(lab)),
    LAB_PIDS: String(lab.limits.pids),
    LAB_CPU_MAX: lab.vm.cpuLimit ? `${Math.round(lab.limits.cpus * 100_000)} 100000` : 'max 100000',
    LAB_TERMINALS: lab.terminals.map((t) => t.target).join(' '),
  };
  return Object.entries(vars)
    .map(([k, v]) => `${k}=${shellQuote(v)}\n`)
    .join('');
}

class Tree {
  readonly entries = new Map<string, CpioEntry>();
  dir(p: string, mode = 0o755): void {
    const parts = p.split('/').filter(Boolean);
    for (let i = 1; i <= parts.length; i++) {
      const d = `/${parts.slice(0, i).join('/')}`;
      if (!this.entries.has(d)) this.entries.set(d, { type: 'dir', path: d, mode });
    }
  }
  add(e: CpioEntry): void {
    this.dir(path.posix.dirname(e.path));
    this.entries.set(e.path, e);
  }
  has(p: string): boolean {
    return this.entries.has(p);
  }
  /** Directories first (sorted paths put a directory before what it holds). */
  list(): CpioEntry[] {
    return [...this.entries.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  }
}

/** Copies one path of the package tree, following symlink chains (each link kept as a link). */
function copyFromTree(tree: string, t: Tree, guestPath: string, taken: Set<string>): string {
  let p = guestPath;
  for (let hops = 0; hops < 20; hops++) {
    const host = path.join(tree, p);
    const st = lstatSync(host, { throwIfNoEntry: false });
    if (!st) throw new Error(`${p}: not in the unpacked packages (is its package in vm/guest.ts?)`);
    taken.add(p);
    if (st.isSymbolicLink()) {
      const target = readlinkSync(host);
      t.add({ type: 'symlink', path: p, target });
      p = target.startsWith('/') ? target : path.posix.join(path.posix.dirname(p), target);
      continue;
    }
    t.add({ type: 'file', path: p, mode: st.mode & 0o777, data: readFileSync(host) });
    return p;
  }
  throw new Error(`${guestPath}: too many symlinks`);
}

function findLibrary(tree: string, soname: string): string {
  for (const d of LIB_DIRS) {
    const p = `${d}/${soname}`;
    if (existsSync(path.join(tree, p))) return p;
  }
  throw new Error(`library ${soname} is in none of ${LIB_DIRS.join(', ')}: add its package to vm/guest.ts`);
}

/** Adds `program` and every library it loads, transitively. */
function addWithLibraries(tree: string, t: Tree, program: string, taken: Set<string>): void {
  const queue = [program];
  const seen = new Set<string>();
  while (queue.length) {
    const p = queue.shift()!;
    if (seen.has(p)) continue;
    seen.add(p);
    const real = copyFromTree(tree, t, p, taken);
    const bytes = readFileSync(path.join(tree, real));
    if (!isElf(bytes)) continue;
    const interp = interpreter(bytes);
    if (interp) queue.push(interp);
    for (const so of neededLibraries(bytes)) queue.push(findLibrary(tree, so));
  }
}

/** Every file, folder and symlink under `dir` of the repository, placed under `at` in the guest. */
function addRepoTree(t: Tree, dir: string, at: string, executable = false): void {
  if (!existsSync(dir)) return;
  const walk = (d: string, rel: string) => {
    for (const e of readdirSync(d, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const host = path.join(d, e.name);
      const guest = path.posix.join(at, rel, e.name);
      if (e.isDirectory()) {
        t.dir(guest);
        walk(host, path.posix.join(rel, e.name));
      } else if (e.isSymbolicLink()) {
        t.add({ type: 'symlink', path: guest, target: readlinkSync(host) });
      } else if (e.isFile()) {
        const mode = statSync(host).mode & 0o777;
        t.add({
          type: 'file',
          path: guest,
          mode: executable || mode & 0o100 ? 0o755 : 0o644,
          data: readFileSync(host),
        });
      }
    }
  };
  walk(dir, '');
}

const text = (s: string) => new TextEncoder().encode(s);

export function assembleRootfs(input: RootfsInput): Rootfs {
  const { tree } = input;
  const t = new Tree();
  const taken = new Set<string>();
  for (const d of [
    '/proc',
    '/sys',
    '/dev',
    '/run',
    '/tmp',
    '/root',
    '/home/reader',
    '/mnt',
    '/srv',
    '/opt',
    '/etc',
    '/var/tmp',
    '/usr/local/bin',
  ])
    t.dir(d, d === '/tmp' || d === '/var/tmp' ? 0o1777 : d === '/root' ? 0o700 : 0o755);
  // The kernel needs /dev/console to give init its stdio before devtmpfs is mounted.
  t.add({ type: 'char', path: '/dev/console', mode: 0o600, major: 5, minor: 1 });

  for (const p of PROGRAMS) addWithLibraries(tree, t, p, taken);
  for (const [from, to] of FILES) {
    const host = path.join(tree, from);
    t.add({ type: 'file', path: to, mode: 0o644, data: readFileSync(host) });
    taken.add(from);
  }

  // busybox for every other command (symlinks in /bin), never over a real program.
  const applets = readBusyboxApplets(path.join(tree, 'bin', 'busybox'));
  for (const a of applets) {
    if (a === 'busybox' || a === 'sh' || a === 'init' || a === 'linuxrc') continue;
    const onPath = ['/bin', '/sbin', '/usr/bin', '/usr/sbin'].some((d) => t.has(`${d}/${a}`));
    if (!onPath) t.add({ type: 'symlink', path: `/bin/${a}`, target: 'busybox' });
  }
  // The shell of scripts (`#!/bin/sh`: box-start, box-idle): busybox's, as light as dash.
  t.add({ type: 'symlink', path: '/bin/sh', target: 'busybox' });

  // The kernel modules, in the order they must be loaded.
  const modDir = readdirSync(path.join(tree, 'lib', 'modules'));
  const kernelVersion = modDir.find((d) => /^\d+\.\d+/.test(d));
  if (!kernelVersion) throw new Error('no kernel modules in the unpacked packages');
  const order = moduleOrder(path.join(tree, 'lib', 'modules', kernelVersion, 'kernel'), MODULES);
  for (const [name, file] of order) {
    t.add({ type: 'file', path: `/lib/modules/${name}.ko`, mode: 0o644, data: readFileSync(file) });
  }
  t.add({
    type: 'file',
    path: '/lib/modules/modules.order',
    mode: 0o644,
    data: text(order.map(([n]) => `${n}.ko\n`).join('')),
  });

  // What every lab image gets (labs/_common/rootfs), and its users (labs/_common/setup.sh).
  addRepoTree(t, path.join(ROOT, 'labs', '_common', 'rootfs'), '/');
  for (const d of ['/usr/local/bin', '/usr/local/sbin', '/usr/local/lib/containerlabs']) {
    for (const e of t.list()) if (e.type === 'file' && e.path.startsWith(`${d}/`)) e.mode = 0o755;
  }
  t.add({
    type: 'file',
    path: '/usr/local/share/containerlabs/passwd',
    mode: 0o644,
    data: text(
      'root:x:0:0:root:/root:/bin/bash\n' +
        'nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n' +
        'reader:x:1000:1000:Container Labs reader:/home/reader:/bin/bash\n',
    ),
  });
  t.add({
    type: 'file',
    path: '/usr/local/share/containerlabs/group',
    mode: 0o644,
    data: text('root:x:0:\ntty:x:5:\nnogroup:x:65534:\nreader:x:1000:\n'),
  });
  t.add({ type: 'symlink', path: '/etc/passwd', target: '/run/lab/passwd' });
  t.add({ type: 'symlink', path: '/etc/group', target: '/run/lab/group' });
  t.add({ type: 'file', path: '/etc/hostname', mode: 0o644, data: text('labhost\n') });
  t.add({
    type: 'file',
    path: '/etc/hosts',
    mode: 0o644,
    data: text('127.0.0.1\tlocalhost\n127.0.1.1\tlabhost\n'),
  });
  t.add({
    type: 'file',
    path: '/etc/os-release',
    mode: 0o644,
    data: readFileSync(path.join(tree, 'usr', 'lib', 'os-release')),
  });
  t.dir('/etc/profile.d');
  t.dir('/run/lab');

  // The VM's own scripts, and the lab server's kernel-view scripts, byte for byte.
  const guest = path.join(ROOT, 'vm', 'guest');
  t.add({ type: 'file', path: '/init', mode: 0o755, data: readFileSync(path.join(guest, 'init')) });
  for (const f of readdirSync(guest).sort()) {
    if (f === 'init') continue;
    t.add({
      type: 'file',
      path: `/usr/local/sbin/${f}`,
      mode: 0o755,
      data: readFileSync(path.join(guest, f)),
    });
  }
  t.add({
    type: 'file',
    path: '/usr/local/lib/containerlabs/inspect/processes.sh',
    mode: 0o644,
    data: text(PROCESS_SCRIPT),
  });
  t.add({
    type: 'file',
    path: '/usr/local/lib/containerlabs/inspect/cgroup.sh',
    mode: 0o644,
    data: text(CGROUP_SCRIPT),
  });

  // Each lab: its settings and its files (copied into place when the lab starts).
  for (const lab of input.labs) {
    const at = `/usr/local/share/containerlabs/vm-labs/${lab.id}`;
    t.add({ type: 'file', path: `${at}/lab.env`, mode: 0o644, data: text(labEnv(lab)) });
    t.dir(`${at}/image`);
    addRepoTree(t, path.join(ROOT, 'labs', lab.id, 'image'), `${at}/image`);
  }

  return { entries: t.list(), fromPackages: [...taken].sort(), kernelVersion };
}

/** Module files in load order: each one's dependencies (from .modinfo) before it. */
export function moduleOrder(kernelDir: string, wanted: readonly string[]): [string, string][] {
  const files = new Map<string, string>();
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.ko')) files.set(e.name.slice(0, -3).replace(/-/g, '_'), p);
    }
  };
  walk(kernelDir);
  const out: [string, string][] = [];
  const visit = (name: string, chain: string[]) => {
    const key = name.replace(/-/g, '_');
    if (out.some(([n]) => n === key)) return;
    if (chain.includes(key)) throw new Error(`module dependency cycle: ${[...chain, key].join(' → ')}`);
    const file = files.get(key);
    if (!file) throw new Error(`kernel module ${name} not found under ${kernelDir}`);
    for (const dep of moduleDepends(readFileSync(file))) visit(dep, [...chain, key]);
    out.push([key, file]);
  };
  for (const m of wanted) visit(m, []);
  return out;
}

/**
 * The applet names busybox was built with. Read from the binary itself, so nothing of the
 * guest is run on the build machine: the list is a NUL-separated run of names that starts
 * with `[` and `[[` (busybox's applet_names, sorted).
 */
export function readBusyboxApplets(file: string): string[] {
  const b = readFileSync(file);
  const start = b.indexOf(Buffer.from('[\0[[\0'));
  if (start < 0) throw new Error('busybox: no applet list found in the binary');
  const names: string[] = [];
  let i = start;
  while (i < b.length) {
    let end = i;
    while (end < b.length && b[end] !== 0) end++;
    if (end === i) break;
    const name = b.subarray(i, end).toString('latin1');
    if (!/^[[a-z0-9_.-]+$/.test(name) && name !== '[[') break;
    names.push(name);
    i = end + 1;
  }
  return names;
}
