/**
 * The adapter's uid handling against a fake dockerode (a real engine is for tests/): which
 * uid a lab host gets, that every exec in it uses that uid, and that uids come back free.
 */
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { describe, it } from 'node:test';
import type Docker from 'dockerode';
import { testLab } from '../../../../tests/unit-support/test-lab.ts';
import { AppError } from '../../errors.ts';
import type { LabHostRequest } from '../runtime.ts';
import { AUTO_LAB_UIDS, DockerRuntime, type DockerRuntimeOptions } from './docker-runtime.ts';
import type { ContainerCreateBody } from './lab-host-spec.ts';

interface FakeContainer {
  id: string;
  labels: Record<string, string>;
  user: string;
}

/** Just enough of dockerode for the adapter: containers in a map, execs recorded. */
class FakeDocker {
  readonly containers = new Map<string, FakeContainer>();
  readonly creates: ContainerCreateBody[] = [];
  readonly execs: { hostId: string; User: string; Cmd: string[]; Env?: string[] }[] = [];
  securityOptions = ['name=seccomp,profile=default'];
  reachable = true;
  failCreate = false;
  #n = 0;

  async version() {
    if (!this.reachable) throw Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
    return { Version: '20.10.24', ApiVersion: '1.41' };
  }
  async info() {
    return { SecurityOptions: this.securityOptions, CgroupVersion: '1' };
  }
  async createContainer(spec: ContainerCreateBody) {
    if (this.failCreate) throw Object.assign(new Error('boom'), { statusCode: 500 });
    this.creates.push(spec);
    const id = `c${++this.#n}`;
    this.containers.set(id, { id, labels: spec.Labels, user: spec.User });
    return { id, start: async () => {}, remove: async () => this.containers.delete(id) };
  }
  async listContainers() {
    return [...this.containers.values()]
      .filter((c) => c.labels['containerlabs.managed'] === 'true')
      .map((c) => ({ Id: c.id, Labels: c.labels, Created: 0 }));
  }
  getContainer(hostId: string) {
    const gone = () => Object.assign(new Error('no such container'), { statusCode: 404 });
    return {
      remove: async () => {
        if (!this.containers.delete(hostId)) throw gone();
      },
      inspect: async () => {
        const c = this.containers.get(hostId);
        if (!c) throw gone();
        return { Config: { User: c.user, Labels: c.labels } };
      },
      exec: async (opts: { User: string; Cmd: string[]; Env?: string[] }) => {
        if (!this.containers.has(hostId)) throw gone();
        this.execs.push({ hostId, User: opts.User, Cmd: opts.Cmd, Env: opts.Env });
        return {
          start: async () => {
            const s = new PassThrough();
            s.end();
            return s;
          },
          resize: async () => {},
          inspect: async () => ({ ExitCode: 0 }),
        };
      },
    };
  }
  readonly modem = { demuxStream: (stream: PassThrough) => stream.resume() };
}

function runtime(fake: FakeDocker, opts: Omit<DockerRuntimeOptions, 'docker'> = {}) {
  return new DockerRuntime({
    docker: fake as unknown as Docker,
    imageFor: async () => 'containerlabs/lab-processes:test',
    ...opts,
  });
}

const lab = testLab();
const request = (sessionId: string): LabHostRequest => ({
  lab,
  sessionId,
  instance: 'unit',
  expiresAt: new Date('2030-01-01T00:00:00Z'),
  deadline: new Date('2030-01-01T00:10:00Z'),
  pooled: false,
});

const uidOf = (spec: ContainerCreateBody) => Number(spec.User.split(':')[0]);

describe('DockerRuntime: a uid per lab host', () => {
  it('gives each lab host its own uid from the rootful range, in User, label and tmpfs owners', async () => {
    const fake = new FakeDocker();
    const rt = runtime(fake);
    await rt.createLabHost(request('s1'));
    await rt.createLabHost(request('s2'));
    const [a, b] = fake.creates.map(uidOf);
    const { first, last } = AUTO_LAB_UIDS.rootful;
    for (const [i, spec] of fake.creates.entries()) {
      const uid = uidOf(spec);
      assert.ok(uid >= first && uid <= last, `uid ${uid}`);
      assert.equal(spec.User, `${uid}:${uid}`);
      assert.equal(spec.Labels['containerlabs.uid'], String(uid));
      const tmpfs = (spec.HostConfig as { Tmpfs: Record<string, string> }).Tmpfs;
      assert.match(tmpfs['/home/reader']!, new RegExp(`uid=${uid},gid=${uid}`), `host ${i}`);
      assert.match(tmpfs['/run/lab']!, new RegExp(`uid=${uid},gid=${uid}`), `host ${i}`);
    }
    assert.notEqual(a, b);
  });

  it('picks inside the mapped range on a rootless engine and with userns-remap', async () => {
    for (const option of ['name=rootless', 'name=userns']) {
      const fake = new FakeDocker();
      fake.securityOptions = ['name=seccomp,profile=default', option];
      await runtime(fake).createLabHost(request('s'));
      const uid = uidOf(fake.creates[0]!);
      const { first, last } = AUTO_LAB_UIDS.namespaced;
      assert.ok(uid >= first && uid <= last, `${option}: uid ${uid}`);
    }
  });

  it('honours a configured range and skips uids other servers’ hosts carry', async () => {
    const fake = new FakeDocker();
    fake.containers.set('other', {
      id: 'other',
      labels: { 'containerlabs.managed': 'true', 'containerlabs.uid': '300' },
      user: '300:300',
    });
    const rt = runtime(fake, { labUids: { first: 300, last: 301 } });
    await rt.createLabHost(request('s'));
    assert.equal(fake.creates[0]!.User, '301:301');
    await assert.rejects(
      rt.createLabHost(request('t')),
      (e: unknown) => e instanceof AppError && e.code === 'out_of_capacity',
    );
  });

  it('runs every exec and terminal of a host as that host’s uid', async () => {
    const fake = new FakeDocker();
    const rt = runtime(fake);
    const h1 = await rt.createLabHost(request('s1'));
    const h2 = await rt.createLabHost(request('s2'));
    await rt.exec(h1.id, ['true']);
    await rt.exec(h2.id, ['true']);
    const term = await rt.openTerminal(
      h2.id,
      { name: 'host', title: 'Host', target: 'host' },
      { cols: 80, rows: 24 },
    );
    term.close();
    const [u1, u2] = fake.creates.map((s) => s.User);
    assert.deepEqual(
      fake.execs.map((e) => [e.hostId, e.User]),
      [
        [h1.id, u1],
        [h2.id, u2],
        [h2.id, u2],
      ],
    );
    assert.ok(fake.execs[0]!.Env?.includes('HOME=/home/reader'));
  });

  it('finds the uid of a host it did not create (a restart): label first, then Config.User', async () => {
    const fake = new FakeDocker();
    await runtime(fake).createLabHost(request('s'));
    const [c] = [...fake.containers.values()];
    const fresh = runtime(fake);
    await fresh.exec(c!.id, ['true']);
    assert.equal(fake.execs[0]!.User, c!.user);
    // No label (made by an older server): the user it runs as.
    fake.containers.set('old', {
      id: 'old',
      labels: { 'containerlabs.managed': 'true' },
      user: '12345:12345',
    });
    await fresh.exec('old', ['true']);
    assert.equal(fake.execs[1]!.User, '12345:12345');
    // Never fall back to root, even if a container says so.
    fake.containers.set('rooty', { id: 'rooty', labels: {}, user: '' });
    await assert.rejects(fresh.exec('rooty', ['true']), /no usable uid/);
    assert.equal(fake.execs.length, 2);
    await assert.rejects(
      fresh.exec('missing', ['true']),
      (e: unknown) => (e as AppError).code === 'session_ended',
    );
  });

  it('frees a uid when its host is removed, or was never made', async () => {
    const fake = new FakeDocker();
    const rt = runtime(fake, { labUids: { first: 42, last: 42 } });
    fake.failCreate = true;
    await assert.rejects(rt.createLabHost(request('s0')), /creating the lab host failed/);
    fake.failCreate = false;
    const h = await rt.createLabHost(request('s1'));
    assert.equal(fake.creates[0]!.User, '42:42', 'the failed create gave its uid back');
    await assert.rejects(rt.createLabHost(request('s2')), /sandboxes are in use/);
    await rt.removeLabHost(h.id);
    await rt.createLabHost(request('s3'));
    assert.equal(fake.creates[1]!.User, '42:42');
  });

  it('says the engine is unreachable when it cannot tell which range applies', async () => {
    const fake = new FakeDocker();
    fake.reachable = false;
    const rt = runtime(fake);
    await assert.rejects(
      rt.createLabHost(request('s')),
      (e: unknown) => e instanceof AppError && e.code === 'engine_unavailable',
    );
    assert.equal(fake.creates.length, 0);
    // Asked again once the engine answers (the failure is not remembered).
    fake.reachable = true;
    await rt.createLabHost(request('s'));
    assert.equal(fake.creates.length, 1);
  });
});

describe('DockerRuntime: quick calls have a time limit (CL_ENGINE_TIMEOUT)', () => {
  /** An engine whose execs never finish (a lab host too slow or stuck to answer). */
  class StuckExecs extends FakeDocker {
    override getContainer(hostId: string) {
      const c = super.getContainer(hostId);
      return {
        ...c,
        exec: async (opts: { User: string; Cmd: string[]; Env?: string[] }) => ({
          ...(await c.exec(opts)),
          start: async () => new PassThrough(), // never ends
        }),
      };
    }
  }

  // A timed-out engine call is the engine failing to answer: 503, with the cause logged.
  const timedOut = (ms: number) => (e: unknown) =>
    e instanceof AppError &&
    e.code === 'engine_unavailable' &&
    (e.cause as Error | undefined)?.message === `timed out after ${ms} ms`;

  it('an exec without a timeout of its own gives up after callTimeoutMs', async () => {
    const fake = new StuckExecs();
    const rt = runtime(fake, { callTimeoutMs: 200 });
    const h = await rt.createLabHost(request('s'));
    const t0 = performance.now();
    await assert.rejects(rt.exec(h.id, ['true']), timedOut(200));
    const took = performance.now() - t0;
    assert.ok(took >= 190 && took < 5000, `gave up after ${took.toFixed(0)} ms`);
  });

  it('an exec with a timeout of its own keeps it', async () => {
    const fake = new StuckExecs();
    const rt = runtime(fake, { callTimeoutMs: 60_000 });
    const h = await rt.createLabHost(request('s'));
    await assert.rejects(rt.exec(h.id, ['true'], { timeoutMs: 100 }), timedOut(100));
  });
});
