/**
 * The engine filter (server/src/engine-filter/) in front of the REAL engine. First the
 * real server runs a whole session through it (create, terminal, process and cgroup
 * panels, admin list, delete) with no call refused; then, straight at the filter's socket,
 * calls a server taken over by an attacker would make: a privileged lab host, a lab host
 * with `/` bind-mounted, image list and pull, an unfiltered container list, an exec into
 * a container that is not a lab host, a volume. Each must be refused with 403 and leave
 * the engine as it was (no container, exec or volume created). The filter's log must name
 * every refusal.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import Docker from 'dockerode';
import { labImageTag } from '../../labs/images.ts';
import { labHostSpec } from '../../server/src/runtime/docker/lab-host-spec.ts';
import { EchoProbe, rssKiB } from '../abuse/support.ts';
import {
  createSession,
  deleteSession,
  labContainers,
  ROOT,
  type RunningServer,
  startServer,
  TermClient,
} from '../support/server.ts';
import { formatSummary, summarize } from '../support/stats.ts';
import { testLab } from '../unit-support/test-lab.ts';
import { until } from './support.ts';

const docker = new Docker(); // the REAL engine socket, for setting up and checking only
const run = `engine-filter-${process.pid}`;
const TEST_LABEL = 'containerlabs.test';

interface Reply {
  status: number;
  body: string;
}

/** One raw HTTP call to the filter's socket (what any client of the socket could send). */
function call(sock: string, method: string, path: string, body?: unknown): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const text = body === undefined ? undefined : JSON.stringify(body);
    const req = request(
      {
        socketPath: sock,
        method,
        path,
        headers:
          text === undefined
            ? {}
            : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) },
      },
      (res) => {
        let b = '';
        res.setEncoding('utf8');
        res.on('data', (c) => {
          b += c;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: b }));
      },
    );
    req.on('error', reject);
    req.end(text);
  });
}

describe('engine filter in front of the real engine', () => {
  const dir = join(ROOT, 'test-results', 'tmp', `ef-${process.pid}`);
  const sock = join(dir, 'engine.sock');
  let filter: ChildProcess;
  let filterLog = '';
  let server: RunningServer | undefined;
  let foreignId = '';

  before(async () => {
    mkdirSync(dir, { recursive: true });
    filter = spawn(process.execPath, ['server/src/engine-filter/main.ts'], {
      cwd: ROOT,
      env: {
        ...process.env,
        CL_FILTER_LISTEN: sock,
        DOCKER_HOST: process.env.DOCKER_HOST ?? 'unix:///var/run/docker.sock',
        LOG_LEVEL: 'debug',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    filter.stdout!.on('data', (d) => {
      filterLog += d;
    });
    filter.stderr!.on('data', (d) => {
      filterLog += d;
    });
    await until(
      'the filter to listen',
      async () => {
        assert.equal(filter.exitCode, null, `the filter exited:\n${filterLog}`);
        return (
          existsSync(sock) && (await call(sock, 'GET', '/_ping').catch(() => ({ status: 0 }))).status === 200
        );
      },
      20_000,
    );
  });

  after(async () => {
    await server?.stop();
    if (filter && filter.exitCode === null) {
      filter.kill('SIGTERM');
      await once(filter, 'exit');
    }
    // Whatever got through (if the filter failed), remove what this file made: by label.
    const mine = await docker.listContainers({ all: true, filters: { label: [`${TEST_LABEL}=${run}`] } });
    await Promise.all(
      mine.map((c) =>
        docker
          .getContainer(c.Id)
          .remove({ force: true })
          .catch(() => {}),
      ),
    );
    await docker
      .getVolume(`${run}-volume`)
      .remove()
      .catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  });

  function forwardedRoutes(from = 0): Set<string> {
    const routes = new Set<string>();
    for (const line of filterLog.slice(from).split('\n')) {
      if (!line.startsWith('{')) continue;
      const l = JSON.parse(line) as { msg?: string; route?: string };
      if (l.msg?.startsWith('forwarded') && l.route) routes.add(l.route);
    }
    return routes;
  }

  const refusals = () => filterLog.split('\n').filter((l) => l.includes('"msg":"refused"'));

  test('a whole session of the real server goes through the filter, nothing refused', async (t) => {
    const instance = `deploy-filter-${process.pid}`;
    const logFrom = filterLog.length;
    server = await startServer({ DOCKER_HOST: `unix://${sock}`, CL_INSTANCE: instance, CL_POOL_SIZE: '0' });
    const health = await (await fetch(`${server.base}/api/v1/health`)).json();
    assert.equal(health.labs.available, true, JSON.stringify(health));

    let t0 = performance.now();
    const s = await createSession(server.base, 'processes').catch((err: Error) => {
      throw new Error(`${err.message}\nfilter refusals:\n${refusals().join('\n')}`);
    });
    t.diagnostic(`session created through the filter in ${(performance.now() - t0).toFixed(0)} ms`);
    assert.equal((await labContainers(instance)).length, 1, 'one lab host on the real engine');

    t0 = performance.now();
    const term = await TermClient.open(server.base, s, 'host');
    await term.ready();
    const uid = Number((await term.exec('id -u')).trim());
    t.diagnostic(`terminal open and first command in ${(performance.now() - t0).toFixed(0)} ms`);
    assert.ok(Number.isInteger(uid) && uid >= 1000, `id -u in the lab host: ${uid}`);

    const auth = { authorization: `Bearer ${s.token}` };
    const procs = await fetch(`${server.base}/api/v1/sessions/${s.id}/processes`, { headers: auth });
    assert.equal(procs.status, 200, await procs.clone().text());
    const snap = (await procs.json()) as { processes: { cmd: string }[] };
    assert.ok(
      snap.processes.some((p) => /lab-init/.test(p.cmd)),
      JSON.stringify(snap.processes.map((p) => p.cmd)),
    );
    const cg = await fetch(`${server.base}/api/v1/sessions/${s.id}/cgroup`, { headers: auth });
    assert.equal(cg.status, 200, await cg.clone().text());
    assert.equal(((await cg.json()) as { memory: { limit: number } }).memory.limit, 128 * 1024 * 1024);

    const adm = await fetch(`${server.base}/api/v1/admin/sessions`);
    assert.equal(adm.status, 200, await adm.clone().text());
    const listed = ((await adm.json()) as { sessions: { id: string; resources: { pids?: number } }[] })
      .sessions;
    const mine = listed.find((x) => x.id === s.id);
    assert.ok(mine, JSON.stringify(listed));
    assert.ok((mine.resources.pids ?? 0) > 0, `admin resources: ${JSON.stringify(mine.resources)}`);

    await term.close();
    assert.equal(await deleteSession(server.base, s), 204);
    await until('the lab host to be removed', async () => (await labContainers(instance)).length === 0);
    await server.stop();
    server = undefined;

    assert.deepEqual(refusals(), [], 'the server needed nothing the filter refuses');
    const routes = [...forwardedRoutes(logFrom)].sort();
    t.diagnostic(`calls the server made: ${routes.join(' ')}`);
    for (const r of [
      'container.create',
      'container.start',
      'exec.create',
      'exec.start',
      'exec.inspect',
      'container.remove',
    ]) {
      assert.ok(routes.includes(r), `${r} went through the filter (${routes.join(', ')})`);
    }
  });

  test('figures: what the filter adds to an API call, a session start and a keystroke', async (t) => {
    const direct = (path: string) =>
      new Promise<void>((resolve, reject) => {
        request({ socketPath: '/var/run/docker.sock', path }, (res) => res.resume().on('end', resolve))
          .on('error', reject)
          .end();
      });
    const viaFilter = async (path: string) => {
      assert.equal((await call(sock, 'GET', path)).status, 200);
    };
    for (const [name, get] of [
      ['direct', direct],
      ['filter', viaFilter],
    ] as const) {
      const samples: number[] = [];
      for (let i = 0; i < 200; i++) {
        const t0 = performance.now();
        await get('/version');
        samples.push(performance.now() - t0);
      }
      t.diagnostic(formatSummary(`GET /version ${name}`, summarize(samples)));
    }

    for (const [name, env] of [
      ['direct', {}],
      ['filter', { DOCKER_HOST: `unix://${sock}` }],
    ] as const) {
      const instance = `deploy-filter-fig-${process.pid}`;
      const srv = await startServer({ ...env, CL_INSTANCE: instance, CL_POOL_SIZE: '0' });
      try {
        const starts: number[] = [];
        for (let i = 0; i < 3; i++) {
          const t0 = performance.now();
          const s = await createSession(srv.base, 'processes');
          starts.push(performance.now() - t0);
          if (i < 2) assert.equal(await deleteSession(srv.base, s), 204);
          else {
            const term = await TermClient.open(srv.base, s, 'host');
            await term.ready();
            const probe = await EchoProbe.start(term);
            const echoes: number[] = [];
            for (let j = 0; j < 200; j++) echoes.push(await probe.once());
            await probe.stop();
            t.diagnostic(formatSummary(`keystroke echo ${name}`, summarize(echoes)));
            await term.close();
            assert.equal(await deleteSession(srv.base, s), 204);
          }
        }
        t.diagnostic(formatSummary(`session start ${name}`, summarize(starts)));
      } finally {
        await srv.stop();
      }
    }
    t.diagnostic(`filter RSS ${(rssKiB(filter.pid!) / 1024).toFixed(1)} MiB`);
  });

  test('calls outside the set are refused with 403 and change nothing on the engine', async (t) => {
    const image = labImageTag('processes');
    const ours = () => {
      const spec = JSON.parse(
        JSON.stringify(
          labHostSpec({
            lab: testLab(),
            image,
            sessionId: 'filter-test',
            instance: `engine-filter-${process.pid}`,
            pooled: false,
            expiresAt: new Date(Date.now() + 60_000),
            deadline: new Date(Date.now() + 60_000),
            hardDeadlineSeconds: 60,
            labels: { [TEST_LABEL]: run },
            // A uid of the allocator's range, so these are lab hosts in every way but intent.
            uid: 2_000_099_000,
          }),
        ),
      );
      return spec as Record<string, unknown> & { HostConfig: Record<string, unknown> };
    };
    // A container that is not a lab host (no managed label), made with the real socket.
    const foreign = await docker.createContainer({
      Image: image,
      Entrypoint: ['sleep', '300'],
      User: '1000:1000',
      Labels: { [TEST_LABEL]: run },
      HostConfig: { NetworkMode: 'none', AutoRemove: true },
    });
    foreignId = foreign.id;
    await foreign.start();

    const privileged = ours();
    privileged.HostConfig.Privileged = true;
    const hostRoot = ours();
    hostRoot.HostConfig.Binds = ['/:/host'];
    const before = refusals().length;

    const attempts: [string, string, string, unknown?][] = [
      ['a privileged lab host', 'POST', '/containers/create', privileged],
      ['a lab host with / bind-mounted', 'POST', '/v1.41/containers/create', hostRoot],
      ['the image list', 'GET', '/images/json'],
      // A registry on loopback: should this ever reach the engine, it fails at once, offline.
      ['an image pull', 'POST', '/images/create?fromImage=127.0.0.1:9/never&tag=latest'],
      ['every container (no label filter)', 'GET', '/containers/json?all=true'],
      [
        'an exec into a container that is not a lab host',
        'POST',
        `/containers/${foreignId}/exec`,
        {
          Cmd: ['/usr/local/bin/lab-shell', 'host'],
          User: '1000:1000',
          Tty: true,
          AttachStdin: true,
          AttachStdout: true,
        },
      ],
      ['a volume', 'POST', '/volumes/create', { Name: `${run}-volume` }],
    ];
    const failures: string[] = [];
    for (const [what, method, path, body] of attempts) {
      const r = await call(sock, method, path, body);
      t.diagnostic(`${what}: ${r.status} ${r.body.slice(0, 160)}`);
      if (r.status !== 403 || !/^\{"message":"engine filter: /.test(r.body))
        failures.push(`${what}: ${r.status} ${r.body.slice(0, 200)}`);
    }

    // Nothing of it reached the engine.
    const made = await docker.listContainers({ all: true, filters: { label: [`${TEST_LABEL}=${run}`] } });
    const extra = made
      .filter((c) => c.Id !== foreignId)
      .map((c) => `${c.Id.slice(0, 12)} ${c.Image} ${c.State}`);
    const execs = ((await foreign.inspect()) as { ExecIDs: string[] | null }).ExecIDs ?? [];
    const volume = await docker
      .getVolume(`${run}-volume`)
      .inspect()
      .then(
        () => true,
        () => false,
      );
    assert.deepEqual(failures, [], 'every call outside the set is refused with 403');
    assert.deepEqual(extra, [], 'no container was created');
    assert.deepEqual(execs, [], 'no exec was created in the foreign container');
    assert.equal(volume, false, 'no volume was created');
    assert.equal(
      refusals().length - before,
      attempts.length,
      `one log line per refusal:\n${refusals().join('\n')}`,
    );
    for (const line of refusals().slice(before)) assert.match(line, /"reason":"[^"]+"/);
  });
});
