/**
 * Integration test of the lab hosts against a real Docker engine: starts each lab with the
 * exact create/exec bodies of server/src/runtime/docker/lab-host-spec.ts through the Engine
 * API (dockerode), drives both terminals through a TTY, and checks what the lessons claim.
 *
 *   node labs/build-images.ts && node --test tests/integration/lab-host-spec.test.ts
 *
 * Not named *.test.ts on purpose: the unit-test glob (labs/**\/*.test.ts) must not need an
 * engine. Fails, saying what to run, when no engine answers or an image is missing.
 */
import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import Docker from 'dockerode';
import { labImageTag } from '../../labs/images.ts';
import { loadLabs } from '../../labs/load.ts';
import type { LabDef } from '../../labs/schema.ts';
import { DockerRuntime } from '../../server/src/runtime/docker/docker-runtime.ts';
import { execSpec, labHostSpec } from '../../server/src/runtime/docker/lab-host-spec.ts';
import { LABELS } from '../../server/src/runtime/docker/labels.ts';
import { requireEngine } from '../support/engine.ts';

const docker = new Docker();
const labs = await loadLabs();
const TEST_LABEL = 'containerlabs.test';
const runId = `itest-${process.pid}-${Date.now()}`;

// An integration test needs its engine and images: their absence is a failure, never a skip.
await requireEngine('the lab host tests');

// biome-ignore lint/suspicious/noControlCharactersInRegex: terminal escape sequences
const ANSI = /\x1b\][^\x07]*\x07|\x1b\[[0-9;?]*[A-Za-z]|\r/g;

/** One terminal: an exec with a TTY, commands typed in, output read up to a marker. */
class Terminal {
  private out = '';
  private n = 0;
  private readonly stream: NodeJS.ReadWriteStream;
  private constructor(stream: NodeJS.ReadWriteStream) {
    this.stream = stream;
    stream.on('data', (d: Buffer) => {
      this.out += d.toString('utf8');
    });
  }
  static async open(c: Docker.Container, target: 'host' | 'container'): Promise<Terminal> {
    // Every exec runs as the lab host's own uid, which its label names.
    const uid = Number((await c.inspect()).Config.Labels[LABELS.uid]);
    const exec = await c.exec(execSpec({ name: target, title: target, target }, uid));
    const stream = (await exec.start({ hijack: true, stdin: true, Tty: true })) as NodeJS.ReadWriteStream;
    await exec.resize({ h: 50, w: 200 });
    const t = new Terminal(stream);
    await t.run('true'); // wait for the prompt
    return t;
  }
  /** Type `cmd`; resolve with what it printed (ANSI stripped). */
  async run(cmd: string, timeoutMs = 20_000): Promise<string> {
    const id = ++this.n;
    // The marker is assembled by printf, so the echoed command line never matches it.
    const marker = `__DONE_${id}__`;
    const start = this.out.length;
    this.stream.write(`${cmd}; printf '__%s_%s__\\n' DONE ${id}\n`);
    const t0 = Date.now();
    while (!this.out.slice(start).includes(marker)) {
      if (Date.now() - t0 > timeoutMs) throw new Error(`timeout running ${cmd}:\n${this.out.slice(start)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    const text = this.out.slice(start).replace(ANSI, '');
    const lines = text.split('\n');
    // Drop the echoed command line and the marker line.
    return lines
      .slice(
        1,
        lines.findIndex((l) => l.includes(marker)),
      )
      .join('\n')
      .trim();
  }
  close(): void {
    this.stream.end();
  }
}

// The uids the server would pick from on this engine (rootful or not); each lab host here
// takes one at random (the server's allocator also avoids live hosts' uids).
const uidRange = await new DockerRuntime({ docker }).labUidRange();
const uids = new Map<string, number>();

async function startLab(lab: LabDef, deadline = 300): Promise<Docker.Container> {
  const uid = uidRange.first + randomInt(uidRange.last - uidRange.first + 1);
  const spec = labHostSpec({
    uid,
    lab,
    image: labImageTag(lab.id),
    sessionId: `${runId}-${lab.id}`,
    instance: `it-spec-${runId}`,
    pooled: false,
    expiresAt: new Date(Date.now() + deadline * 1000),
    deadline: new Date(Date.now() + deadline * 1000),
    hardDeadlineSeconds: deadline,
    labels: { [TEST_LABEL]: runId },
  });
  const c = await docker.createContainer(spec);
  await c.start();
  uids.set(c.id, uid);
  return c;
}

const started: Docker.Container[] = [];
after(async () => {
  for (const c of started) await c.stop({ t: 5 }).catch(() => {});
});

function lab(id: string): LabDef {
  const l = labs.find((x) => x.id === id);
  assert.ok(l, id);
  return l;
}

/** A lab host of one lab for a describe block, with a terminal on each side (opened in before()). */
function labHost(id: string): { c: Docker.Container; host: Terminal; box: Terminal } {
  const h = {} as { c: Docker.Container; host: Terminal; box: Terminal };
  before(async () => {
    h.c = await startLab(lab(id));
    started.push(h.c);
    h.box = await Terminal.open(h.c, 'container');
    h.host = await Terminal.open(h.c, 'host');
  });
  after(() => {
    h.host?.close();
    h.box?.close();
  });
  return h;
}

/** Resolves once the engine no longer knows the container (AutoRemove); fails after `ms`. */
async function gone(c: Docker.Container, ms: number, what: string): Promise<void> {
  for (const end = Date.now() + ms; Date.now() < end; ) {
    try {
      await c.inspect();
    } catch (err) {
      assert.equal((err as { statusCode?: number }).statusCode, 404);
      return;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail(what);
}

describe('lab hosts on a real engine', () => {
  describe('processes', () => {
    const h = labHost('processes');

    it('inside: the app is PID 1, we are root on host "box"', async () => {
      const ps = await h.box.run('ps -eo pid,user,args');
      assert.match(ps, /^\s*1 root +busybox httpd -f -p 8080 -h \/srv\/www$/m);
      assert.match(ps, /^\s*\d+ root +\/bin\/bash -l$/m);
      assert.equal(await h.box.run('id -u; id -un'), '0\nroot');
      assert.equal(await h.box.run('hostname'), 'box');
      assert.equal(await h.box.run('pwd'), '/');
      assert.equal(await h.box.run('cd && pwd'), '/root');
    });

    it('outside: init -> unshare -> the app, all as our own uid; NSpid gives both PIDs', async () => {
      const uid = uids.get(h.c.id);
      assert.equal(await h.host.run('id'), `uid=${uid}(reader) gid=${uid}(reader) groups=${uid}(reader)`);
      assert.equal(await h.host.run('whoami; echo $HOME'), 'reader\n/home/reader');
      assert.equal(await h.host.run('hostname'), 'labhost');
      const ps = await h.host.run('ps -eo pid,ppid,user,args');
      const rows = ps
        .split('\n')
        .slice(1)
        .map((l) => l.trim().split(/\s+/))
        .map(([pid, ppid, user, ...args]) => ({ pid, ppid, user, args: args.join(' ') }));
      const init = rows.find((r) => r.pid === '1');
      assert.match(init?.args ?? '', /lab-init/);
      const unshare = rows.find((r) => r.ppid === '1' && r.args.startsWith('unshare -U -r -p -f -m -u -i'));
      assert.ok(unshare, ps);
      const app = rows.find((r) => r.ppid === unshare.pid);
      assert.equal(app?.args, 'busybox httpd -f -p 8080 -h /srv/www');
      assert.ok(rows.every((r) => r.user === 'reader'));
      assert.equal(await h.host.run(`grep NSpid /proc/${app?.pid}/status`), `NSpid:\t${app?.pid}\t1`);
      assert.equal((await h.host.run(`cat /proc/${app?.pid}/uid_map`)).split(/\s+/).join(' '), `0 ${uid} 1`);
      // the container shell is visible from outside under nsenter
      assert.match(ps, /nsenter -t \d+ -U -p -m -u -i --preserve-credentials \/bin\/bash -l/);
    });

    it('has no privileges, no network but lo, and refuses new network namespaces', async () => {
      const st = await h.host.run("grep -E 'CapEff|NoNewPrivs|Seccomp:' /proc/self/status");
      assert.match(st, /CapEff:\s+0000000000000000/);
      assert.match(st, /NoNewPrivs:\s+1/);
      assert.match(st, /Seccomp:\s+2/);
      for (const t of [h.host, h.box]) {
        const links = await t.run("ip -o link | awk -F': ' '{print $2}'");
        assert.equal(links, 'lo');
        assert.equal((await t.run('tail -n +2 /proc/net/route | wc -l')).trim(), '0');
        assert.match(await t.run('unshare -n true; echo rc=$?'), /Operation not permitted[\s\S]*rc=1/);
        assert.match(await t.run('echo x > /proc/sys/kernel/core_pattern; echo rc=$?'), /rc=1/);
      }
      assert.match(await h.host.run('unshare -U -r --cgroup true; echo rc=$?'), /rc=1/);
      assert.match(await h.host.run('touch /x; echo rc=$?'), /Read-only file system[\s\S]*rc=1/);
      assert.equal(await h.host.run('find / -xdev -perm /6000 2>/dev/null | wc -l'), '0');
    });

    it('disappears when stopped (AutoRemove)', async () => {
      await h.c.stop({ t: 5 });
      await gone(h.c, 5000, 'container still there 5 s after stop');
    });
  });

  describe('namespaces', () => {
    const h = labHost('namespaces');

    it('a mount only the container sees', async () => {
      assert.equal(await h.box.run('ls /mnt/inside'), 'hello.txt');
      assert.equal(await h.host.run('ls /mnt/inside'), 'README.txt');
    });

    it('an IPC object only the container sees', async () => {
      assert.match(await h.box.run('ipcs -m'), /0x[0-9a-f]+\s+\d+\s+root\s+644\s+4096/);
      assert.doesNotMatch(await h.host.run('ipcs -m'), /4096/);
      assert.equal(await h.box.run('ls /dev/shm'), 'box-note');
      assert.equal(await h.host.run('ls /dev/shm'), '');
    });

    it('different user, pid, mnt, uts, ipc namespaces; the same net and cgroup ones', async () => {
      const pid = await h.host.run('pgrep -P $(cat /run/lab/unshare.pid)');
      for (const ns of ['user', 'pid', 'mnt', 'uts', 'ipc']) {
        assert.notEqual(
          await h.host.run(`readlink /proc/self/ns/${ns}`),
          await h.host.run(`readlink /proc/${pid}/ns/${ns}`),
        );
      }
      for (const ns of ['net', 'cgroup']) {
        assert.equal(
          await h.host.run(`readlink /proc/self/ns/${ns}`),
          await h.host.run(`readlink /proc/${pid}/ns/${ns}`),
        );
      }
    });
  });

  describe('cgroups', () => {
    const h = labHost('cgroups');

    it('cgroup-info shows the limits of lab.yaml', async () => {
      const info = await h.host.run('cgroup-info');
      assert.match(info, /limit +128\.0 MiB/);
      assert.match(info, /= 50% of one CPU/);
      assert.match(info, /pids\n +limit +100\n/);
    });

    it('the memory hog is OOM-killed and the session lives on', async () => {
      assert.match(await h.box.run('mem-hog 300', 60_000), /killed by SIGKILL/);
      assert.equal(await h.host.run('echo alive'), 'alive');
      assert.equal(await h.box.run('echo alive'), 'alive');
      assert.match(await h.host.run('cgroup-info'), /OOM kills +[1-9]/);
    });

    it('the fork bomb hits the pids limit and is cleaned up', async () => {
      const out = await h.host.run('fork-bomb 3', 60_000);
      const refused = Number(/refused (\d+) forks/.exec(out)?.[1]);
      assert.ok(refused > 0, out);
      assert.equal(await h.box.run('echo alive'), 'alive');
      const inUse = Number(
        await h.host.run(
          'cat /sys/fs/cgroup/pids/pids.current 2>/dev/null || cat /sys/fs/cgroup/pids.current',
        ),
      );
      assert.ok(inUse < 20, `pids still in use: ${inUse}`);
    });

    it('ends by itself at its hard deadline', async () => {
      const short = await startLab(lab('cgroups'), 3);
      started.push(short);
      await gone(short, 10_000, 'lab host still there 10 s after a 3 s deadline');
    });
  });
});
