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
  argv: string[];
}

export function processScriptOutput(o: { self: number; passwd: string[]; procs: FakeProcess[] }): string {
  const rec = (...fields: (string | number)[]) => fields.map((f) => `${f}\0`).join('');
  let out = rec('SELF', o.self);
  for (const p of o.procs) {
    out += rec('STATUS', p.pid, 'PPid', p.ppid);
    out += rec('STATUS', p.pid, 'Uid', [p.uid, p.uid, p.uid, p.uid].join('\t'));
    out += rec('STATUS', p.pid, 'NSpid', (p.nspid ?? [p.pid]).join('\t'));
    for (const [a, b, c] of p.uidMap ?? [[0, 0, 4294967295]]) out += rec('UIDMAP', p.pid, a, b, c);
  }
  for (const p of o.procs) {
    for (const [kind, inode] of Object.entries(p.ns ?? {}))
      out += rec('NS', `/proc/${p.pid}/ns/${kind}`, `${kind}:[${inode}]`);
  }
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
