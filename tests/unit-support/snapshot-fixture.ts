/**
 * For unit tests: what the process script prints for a given set of processes, so a test
 * can describe processes (including one with a hostile command line) instead of writing
 * the script's output by hand. It mirrors the script's printf lines; the integration
 * test (tests/integration/inspect.test.ts) checks the real script on a real lab host.
 */

export interface FakeProcess {
  pid: number;
  ppid: number;
  /** The four ids of the status line `Uid:` (real, effective, saved, filesystem). */
  uid: number;
  nspid?: number[];
  /** uid_map lines: inside, outside, count. */
  uidMap?: [number, number, number][];
  /** Namespace kind → inode. */
  ns?: Record<string, string>;
  /** The status line `State:` as the kernel writes it, e.g. `Z (zombie)`. */
  state?: string;
  /** The status line `CapEff:`, 16 hex digits. */
  capEff?: string;
  /** `device:inode` of its root directory, as `find -L … -printf %D:%i` prints it. */
  root?: string;
  argv: string[];
}

export function processScriptOutput(o: { self: number; passwd: string[]; procs: FakeProcess[] }): string {
  const rec = (...fields: (string | number)[]) => fields.map((f) => `${f}\0`).join('');
  let out = rec('SELF', o.self);
  for (const p of o.procs) {
    out += rec('STATUS', p.pid, 'PPid', p.ppid);
    out += rec('STATUS', p.pid, 'Uid', [p.uid, p.uid, p.uid, p.uid].join('\t'));
    out += rec('STATUS', p.pid, 'NSpid', (p.nspid ?? [p.pid]).join('\t'));
    if (p.state) out += rec('STATUS', p.pid, 'State', p.state);
    if (p.capEff) out += rec('STATUS', p.pid, 'CapEff', p.capEff);
    for (const [a, b, c] of p.uidMap ?? [[0, 0, 4294967295]]) out += rec('UIDMAP', p.pid, a, b, c);
  }
  for (const p of o.procs) {
    for (const [kind, inode] of Object.entries(p.ns ?? {}))
      out += rec('NS', `/proc/${p.pid}/ns/${kind}`, `${kind}:[${inode}]`);
  }
  for (const p of o.procs) if (p.root) out += rec('ROOT', `/proc/${p.pid}/root`, p.root);
  for (const p of o.procs) {
    // /proc/<pid>/cmdline holds each argument NUL-terminated (a process that rewrites its
    // argv area can put NULs anywhere); `mapfile -d ''` splits at every NUL and the
    // script joins the pieces with spaces.
    const pieces = p.argv
      .map((a) => `${a}\0`)
      .join('')
      .split('\0');
    pieces.pop();
    out += rec('CMD', p.pid, pieces.join(' ').slice(0, 2048));
  }
  for (const line of o.passwd) out += rec('PASSWD', line);
  return out;
}

/** What the mounts script prints: mountinfo lines per mount namespace inode. */
export function mountScriptOutput(tables: Record<string, string[]>): string {
  let out = '';
  for (const [ns, lines] of Object.entries(tables)) for (const l of lines) out += `MNT\0${ns}\0${l}\0`;
  return out;
}

/** mountinfo lines as seen in a lab host (trimmed): its overlay root with six lower layers, and more. */
export const LAB_HOST_MOUNTS = [
  '173 145 0:56 / / ro,relatime master:2 - overlay overlay rw,lowerdir=/var/lib/docker/overlay2/l/A:/var/lib/docker/overlay2/l/B:/var/lib/docker/overlay2/l/C:/var/lib/docker/overlay2/l/D:/var/lib/docker/overlay2/l/E:/var/lib/docker/overlay2/l/F,upperdir=/var/lib/docker/overlay2/91/diff,workdir=/var/lib/docker/overlay2/91/work',
  '174 173 0:64 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw',
  '175 173 0:66 / /dev rw,nosuid - tmpfs tmpfs rw,size=65536k,mode=755',
  '190 173 0:70 / /tmp rw,nosuid,nodev,relatime - tmpfs tmpfs rw,size=16384k',
];
