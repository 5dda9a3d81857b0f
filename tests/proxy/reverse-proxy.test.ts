/**
 * deploy/nginx.conf and deploy/Caddyfile for real: each proxy runs on a loopback port with
 * the snippet as shipped (only TLS, names and ports swapped for the test) in front of the
 * real server (CL_TRUST_PROXY=true) and engine. Through it: the site, a lab start, a
 * terminal WebSocket with the proxy's origin, and the proxy's client address (a client's
 * own X-Forwarded-For is not believed); /metrics and the admin API are not reachable.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ROOT, until } from '../deploy/support.ts';
import {
  freePort,
  labContainers,
  type RunningServer,
  socketOutcome,
  startServer,
  TermClient,
  terminalSocketUrl,
} from '../support/server.ts';

function need(cmd: string, args: string[], pkg: string): void {
  if (spawnSync(cmd, args, { stdio: 'ignore' }).status !== 0) {
    throw new Error(`${cmd} is not installed: ./run.sh setup installs it (apt-get install ${pkg})`);
  }
}

/** deploy/nginx.conf with the test's ports: plain HTTP on loopback instead of TLS on 443. */
export function nginxTestConfig(proxyPort: number, serverPort: number, dir: string): string {
  let conf = readFileSync(join(ROOT, 'deploy', 'nginx.conf'), 'utf8');
  conf = conf.replace(/server \{\n\s+listen 80;[\s\S]*?\n\}\n/, ''); // the http → https redirect
  conf = conf.replace(
    / {4}listen 443 ssl http2;\n {4}listen \[::\]:443 ssl http2;\n/,
    `    listen 127.0.0.1:${proxyPort};\n`,
  );
  conf = conf.replace(/ {4}ssl_certificate.*\n/g, '');
  conf = conf.replace('server 127.0.0.1:4321;', `server 127.0.0.1:${serverPort};`);
  const directives = conf.replace(/#.*$/gm, '');
  assert.doesNotMatch(directives, /443|ssl_|4321/, 'the test config replaced TLS and the port');
  return [
    'daemon off;',
    'worker_processes 1;',
    `pid ${dir}/nginx.pid;`,
    `error_log ${dir}/error.log warn;`,
    'events { worker_connections 64; }',
    'http {',
    '  access_log off;',
    `  client_body_temp_path ${dir}/body; proxy_temp_path ${dir}/proxy;`,
    `  fastcgi_temp_path ${dir}/fcgi; uwsgi_temp_path ${dir}/uwsgi; scgi_temp_path ${dir}/scgi;`,
    conf,
    '}',
  ].join('\n');
}

export function caddyTestConfig(proxyPort: number, serverPort: number): string {
  let conf = readFileSync(join(ROOT, 'deploy', 'Caddyfile'), 'utf8');
  conf = conf.replace(/^labs\.example\.org \{/m, `http://127.0.0.1:${proxyPort} {`);
  conf = conf.replace('reverse_proxy 127.0.0.1:4321', `reverse_proxy 127.0.0.1:${serverPort}`);
  assert.doesNotMatch(conf.replace(/#.*$/gm, ''), /4321|example\.org \{/);
  return `{\n\tadmin off\n\tauto_https off\n}\n\n${conf}`;
}

async function throughProxy(
  t: { diagnostic(s: string): void },
  base: string,
  instance: string,
): Promise<void> {
  const site = await fetch(`${base}/`);
  assert.equal(site.status, 200);
  assert.match(await site.text(), /<html/i);
  assert.equal((await fetch(`${base}/metrics`)).status, 404, '/metrics is not published');
  assert.equal((await fetch(`${base}/api/v1/admin/sessions`)).status, 404, 'the admin API is not published');

  const post = (xff?: string) =>
    fetch(`${base}/api/v1/sessions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(xff ? { 'x-forwarded-for': xff } : {}) },
      body: '{"lab":"processes"}',
    });
  const r = await post('203.0.113.1');
  assert.equal(r.status, 201, await r.clone().text());
  const s = await r.json();
  // The cap is 1 per client; a different self-declared address must not get a second one.
  const again = await post('203.0.113.2');
  assert.equal(again.status, 429, 'the proxy, not the client, says who the client is');

  // A browser on the public site sends the proxy's origin; a foreign one is refused.
  const wsUrl = () => terminalSocketUrl(base, s, 'host');
  assert.equal(
    await socketOutcome(await wsUrl(), { origin: base }),
    'attached',
    'the public origin opens terminals',
  );
  assert.equal(
    await socketOutcome(await wsUrl(), { origin: 'https://evil.example' }),
    'close 4003 forbidden',
  );
  const term = await TermClient.open(base, s, 'host');
  await term.ready();
  assert.match(await term.exec('echo through-the-proxy'), /through-the-proxy/);
  await term.close();
  assert.equal((await labContainers(instance)).length, 1);
  const del = await fetch(`${base}/api/v1/sessions/${s.id}`, {
    method: 'DELETE',
    headers: { authorization: `Bearer ${s.token}` },
  });
  assert.equal(del.status, 204);
  t.diagnostic(`session, terminal and delete through ${base}`);
}

describe('reverse proxy snippets (real nginx, Caddy, server and engine)', () => {
  const instance = `deploy-rproxy-${process.pid}`;
  let srv: RunningServer;
  let dir: string;
  const procs: ChildProcess[] = [];

  before(async () => {
    srv = await startServer({
      CL_INSTANCE: instance,
      CL_POOL_SIZE: '0',
      CL_TRUST_PROXY: 'true',
      CL_MAX_SESSIONS_PER_CLIENT: '1',
      CL_DRAIN_GRACE: '0',
    });
    dir = mkdtempSync(join(tmpdir(), 'cl-proxy-'));
  });
  after(async () => {
    for (const p of procs) if (p.exitCode === null) p.kill('SIGTERM');
    assert.equal(await srv.stop(), 0);
    rmSync(dir, { recursive: true, force: true });
    assert.deepEqual(await labContainers(instance), []);
  });

  const startProxy = async (cmd: string, args: string[], port: number, env: Record<string, string> = {}) => {
    let out = '';
    const p = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    procs.push(p);
    p.stdout!.on('data', (d) => {
      out += d;
    });
    p.stderr!.on('data', (d) => {
      out += d;
    });
    await until(`${cmd} to answer on ${port}`, async () => {
      if (p.exitCode !== null) throw new Error(`${cmd} exited:\n${out}`);
      try {
        await fetch(`http://127.0.0.1:${port}/api/v1/health`);
        return true;
      } catch {
        return false;
      }
    });
    return p;
  };

  test('nginx (deploy/nginx.conf)', async (t) => {
    need('nginx', ['-v'], 'nginx-light');
    const port = await freePort();
    const file = join(dir, 'nginx.conf');
    writeFileSync(file, nginxTestConfig(port, srv.port, dir));
    const check = spawnSync('nginx', ['-t', '-c', file, '-p', dir], { encoding: 'utf8' });
    assert.equal(check.status, 0, check.stderr);
    const p = await startProxy('nginx', ['-c', file, '-p', dir], port);
    await throughProxy(t, `http://127.0.0.1:${port}`, instance);
    p.kill('SIGTERM');
  });

  test('Caddy (deploy/Caddyfile)', async (t) => {
    need('caddy', ['version'], 'caddy');
    const port = await freePort();
    const file = join(dir, 'Caddyfile');
    writeFileSync(file, caddyTestConfig(port, srv.port));
    const env = { XDG_DATA_HOME: join(dir, 'data'), XDG_CONFIG_HOME: join(dir, 'config'), HOME: dir };
    const check = spawnSync('caddy', ['validate', '--config', file, '--adapter', 'caddyfile'], {
      encoding: 'utf8',
      env: { ...process.env, ...env },
    });
    assert.equal(check.status, 0, check.stderr);
    const p = await startProxy('caddy', ['run', '--config', file, '--adapter', 'caddyfile'], port, env);
    await throughProxy(t, `http://127.0.0.1:${port}`, instance);
    p.kill('SIGTERM');
  });
});
