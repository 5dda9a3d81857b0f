/**
 * The filter's entry point and configuration: the unix socket gets the chosen mode and
 * group, a stale socket file is replaced, a live socket or another file is left alone,
 * bad settings stop the start with a line per problem. No engine needed: the filter
 * only reaches the engine when asked.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { loadFilterConfig, parseListen, parseUpstream } from './config.ts';

const MAIN = join(import.meta.dirname, 'main.ts');
const dir = mkdtempSync(join(tmpdir(), 'cl-filter-main-'));
const children = new Set<ChildProcess>();

after(async () => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

function start(env: Record<string, string>): { child: ChildProcess; output: () => string } {
  const child = spawn(process.execPath, [MAIN], {
    env: { PATH: process.env.PATH ?? '', DOCKER_HOST: `unix://${join(dir, 'no-engine.sock')}`, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  let out = '';
  child.stdout!.on('data', (d) => {
    out += d;
  });
  child.stderr!.on('data', (d) => {
    out += d;
  });
  return { child, output: () => out };
}

async function listening(p: { child: ChildProcess; output: () => string }): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (p.output().includes('engine filter listening')) return;
    if (p.child.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.fail(`the filter did not start:\n${p.output()}`);
}

async function exited(p: { child: ChildProcess }): Promise<number | null> {
  if (p.child.exitCode !== null) return p.child.exitCode;
  const [code] = (await once(p.child, 'exit')) as [number | null];
  return code;
}

describe('engine filter main', () => {
  it('creates its unix socket with the chosen mode and group, and removes it on SIGTERM', async () => {
    const sock = join(dir, 'a.sock');
    const gid = process.getgid!();
    const p = start({
      CL_FILTER_LISTEN: sock,
      CL_FILTER_SOCKET_MODE: '0640',
      CL_FILTER_SOCKET_GROUP: String(gid),
    });
    await listening(p);
    const st = statSync(sock);
    assert.ok(st.isSocket());
    assert.equal(st.mode & 0o777, 0o640);
    assert.equal(st.gid, gid);
    p.child.kill('SIGTERM');
    assert.equal(await exited(p), 0);
    assert.equal(existsSync(sock), false);
  });

  it('replaces a stale socket left by a filter that was killed', async () => {
    const sock = join(dir, 'b.sock');
    const first = start({ CL_FILTER_LISTEN: sock });
    await listening(first);
    first.child.kill('SIGKILL');
    await exited(first);
    assert.ok(statSync(sock).isSocket(), 'SIGKILL leaves the socket file behind');
    const second = start({ CL_FILTER_LISTEN: sock });
    await listening(second);
    second.child.kill('SIGTERM');
    assert.equal(await exited(second), 0);
  });

  it('leaves a live socket and any other file alone, and says why', async () => {
    const sock = join(dir, 'c.sock');
    const live = start({ CL_FILTER_LISTEN: sock });
    await listening(live);
    const again = start({ CL_FILTER_LISTEN: sock });
    assert.equal(await exited(again), 1);
    assert.match(again.output(), /another process is listening there/);
    live.child.kill('SIGTERM');
    await exited(live);

    const file = join(dir, 'not-a-socket');
    writeFileSync(file, 'keep me');
    const p = start({ CL_FILTER_LISTEN: file });
    assert.equal(await exited(p), 1);
    assert.match(p.output(), /exists and is not a socket/);
    assert.equal(statSync(file).isFile(), true);
  });

  it('refuses bad settings with exit 2 and one line per problem', async () => {
    const p = start({
      CL_FILTER_LISTEN: '0.0.0.0:2375',
      CL_FILTER_SOCKET_MODE: '777x',
      DOCKER_HOST: 'ssh://root@somewhere',
    });
    assert.equal(await exited(p), 2);
    assert.match(p.output(), /CL_FILTER_SOCKET_MODE/);
    const q = start({ CL_FILTER_LISTEN: '0.0.0.0:2375', DOCKER_HOST: 'ssh://root@somewhere' });
    assert.equal(await exited(q), 2);
    assert.match(q.output(), /CL_FILTER_LISTEN: only loopback addresses/);
    assert.match(q.output(), /DOCKER_HOST: .*not supported/);
  });
});

describe('engine filter config', () => {
  it('listens on a unix path or a loopback port only', () => {
    assert.deepEqual(parseListen('/run/engine-filter/docker.sock'), {
      kind: 'unix',
      path: '/run/engine-filter/docker.sock',
    });
    assert.deepEqual(parseListen('unix:///tmp/x.sock'), { kind: 'unix', path: '/tmp/x.sock' });
    assert.deepEqual(parseListen('127.0.0.1:2375'), { kind: 'tcp', host: '127.0.0.1', port: 2375 });
    assert.deepEqual(parseListen('tcp://[::1]:2375'), { kind: 'tcp', host: '::1', port: 2375 });
    for (const bad of ['0.0.0.0:2375', '192.168.1.2:2375', 'docker.sock', ':2375', '127.0.0.1:99999']) {
      assert.equal(typeof parseListen(bad), 'string', bad);
    }
  });

  it('reads DOCKER_HOST like the Docker CLI, unix or tcp', () => {
    assert.deepEqual(parseUpstream('unix:///var/run/docker.sock'), { socketPath: '/var/run/docker.sock' });
    assert.deepEqual(parseUpstream('tcp://127.0.0.1:2375'), { host: '127.0.0.1', port: 2375 });
    for (const bad of ['ssh://x', 'npipe:////./pipe/docker_engine', 'unix://relative', 'https://x:2376']) {
      assert.equal(typeof parseUpstream(bad), 'string', bad);
    }
  });

  it('defaults; the operator’s own AppArmor profile; no TLS; not the engine socket itself', () => {
    const c = loadFilterConfig({});
    assert.deepEqual(c.listen, { kind: 'unix', path: '/run/engine-filter/docker.sock' });
    assert.equal(c.socketMode, 0o660);
    assert.deepEqual(c.upstream, { socketPath: '/var/run/docker.sock' });
    assert.deepEqual(c.apparmorProfiles, []);
    assert.deepEqual(loadFilterConfig({ CL_APPARMOR_PROFILE: 'containerlabs' }).apparmorProfiles, [
      'containerlabs',
    ]);
    assert.throws(() => loadFilterConfig({ DOCKER_TLS_VERIFY: '1' }), /TLS/);
    assert.throws(
      () => loadFilterConfig({ CL_FILTER_LISTEN: '/var/run/docker.sock' }),
      /engine socket itself/,
    );
  });
});
