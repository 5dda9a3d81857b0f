/**
 * deploy/nginx.conf and deploy/Caddyfile for real: each proxy runs on a loopback port with
 * the snippet as shipped (only TLS, names, ports and log paths swapped for the test) in
 * front of the real server (CL_TRUST_PROXY=loopback, as the snippets advise for the
 * plain-Node path) and engine. Through it: the site, a lab start, a terminal WebSocket
 * with the proxy's origin, and the proxy's client address (a client's own X-Forwarded-For
 * is not believed); /metrics and the admin API are not reachable; the proxies' logs keep
 * no token, access code or query string. nginx also limits each client: a burst of lab
 * starts is cut at its limit while pages still load, and parallel requests are capped.
 * Other clients are simulated from 127.0.0.2-4 (loopback only).
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { httpFrom } from '../abuse/support.ts';
import { ROOT, sleep, until } from '../deploy/support.ts';
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
  conf = conf.replaceAll('/var/log/nginx/', `${dir}/`);
  const directives = conf.replace(/#.*$/gm, '');
  // Whole numbers only: a random port or directory name may contain 443 or 4321.
  assert.doesNotMatch(directives, /\b443\b|ssl_|:4321\b/, 'the test config replaced TLS and the port');
  return [
    'daemon off;',
    'worker_processes 1;',
    `pid ${dir}/nginx.pid;`,
    `error_log ${dir}/error.log warn;`,
    'events { worker_connections 256; }',
    'http {',
    // What Debian's /etc/nginx/nginx.conf sets around conf.d/ (the combined format).
    `  access_log ${dir}/access.log;`,
    `  client_body_temp_path ${dir}/body; proxy_temp_path ${dir}/proxy;`,
    `  fastcgi_temp_path ${dir}/fcgi; uwsgi_temp_path ${dir}/uwsgi; scgi_temp_path ${dir}/scgi;`,
    conf,
    '}',
  ].join('\n');
}

export function caddyTestConfig(proxyPort: number, serverPort: number, dir: string): string {
  let conf = readFileSync(join(ROOT, 'deploy', 'Caddyfile'), 'utf8');
  conf = conf.replace(/^labs\.example\.org \{/m, `http://127.0.0.1:${proxyPort} {`);
  conf = conf.replace('reverse_proxy 127.0.0.1:4321', `reverse_proxy 127.0.0.1:${serverPort}`);
  conf = conf.replaceAll('/var/log/caddy/', `${dir}/`);
  assert.doesNotMatch(conf.replace(/#.*$/gm, ''), /:4321\b|example\.org \{|\/var\/log/);
  // Loopback only: a site address names the host to match, not the address to listen on.
  const options = '\tadmin off\n\tauto_https off\n\tdefault_bind 127.0.0.1\n';
  // Into the Caddyfile's own global options block, if it has one (Caddy allows one).
  return /^\{$/m.test(conf) ? conf.replace(/^\{\n/m, `{\n${options}`) : `{\n${options}}\n\n${conf}`;
}

/** The first number of `pattern` in deploy/nginx.conf (its directives, not its comments). */
function nginxSetting(pattern: RegExp): number | undefined {
  const conf = readFileSync(join(ROOT, 'deploy', 'nginx.conf'), 'utf8').replace(/#.*$/gm, '');
  const m = pattern.exec(conf);
  return m ? Number(m[1]) : undefined;
}

/** Every log file the proxy wrote into `dir`, joined (empty when it wrote none). */
function logsIn(dir: string): string {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.log'))
    .map((f) => readFileSync(join(dir, f), 'utf8'))
    .join('\n');
}

const SECRET_TOKEN = 'secret-xyz';
const SECRET_CODE = 'code-abc123';

/**
 * Requests carrying secrets in query strings (a terminal's `?token=`, an invite link's
 * `?access=`), a Referer and a cookie; then the proxy's logs must show the requests (their
 * paths) but none of the secrets, nor the real session token of `s`.
 */
async function logsKeepNoSecrets(
  t: { diagnostic(s: string): void },
  base: string,
  logs: () => string,
  s: { id: string; token: string },
): Promise<void> {
  const terminal = `/api/v1/sessions/${s.id}/terminals/host`;
  await fetch(`${base}${terminal}?token=${SECRET_TOKEN}&cols=80`);
  await fetch(`${base}/?access=${SECRET_CODE}`, {
    headers: { referer: `${base}/?access=${SECRET_CODE}`, cookie: `cl_access=${SECRET_CODE}` },
  });
  let text = '';
  await until(
    'the proxy to log both requests',
    () => {
      text = logs();
      // nginx's line ("GET / HTTP/1.1") or Caddy's JSON ("uri":"/"), with or without the query.
      return text.includes(terminal) && /"GET \/[ ?]|"uri":"\/[?"]/.test(text);
    },
    5_000,
  ).catch(() => {
    assert.fail(`the proxy's access log does not show the requests (${terminal}, /):\n${text}`);
  });
  t.diagnostic(
    `access log: ${text
      .split('\n')
      .filter((l) => l.includes(terminal))
      .pop()}`,
  );
  for (const secret of [SECRET_TOKEN, SECRET_CODE, s.token]) {
    assert.ok(!text.includes(secret), `the proxy logged a secret (${secret}):\n${text}`);
  }
}

async function throughProxy(
  t: { diagnostic(s: string): void },
  base: string,
  instance: string,
): Promise<{ id: string; token: string }> {
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
  return s;
}

describe('reverse proxy snippets (real nginx, Caddy, server and engine)', () => {
  const instance = `deploy-rproxy-${process.pid}`;
  let srv: RunningServer;
  let dir: string;
  const procs: ChildProcess[] = [];
  const outputs = new Map<ChildProcess, () => string>();
  const output = (p: ChildProcess) => outputs.get(p)?.() ?? '';

  before(async () => {
    srv = await startServer({
      CL_INSTANCE: instance,
      CL_POOL_SIZE: '0',
      CL_TRUST_PROXY: 'loopback',
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
    outputs.set(p, () => out);
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
    const s = await throughProxy(t, `http://127.0.0.1:${port}`, instance);
    await logsKeepNoSecrets(t, `http://127.0.0.1:${port}`, () => logsIn(dir), s);
    p.kill('SIGTERM');
  });

  /** nginx with deploy/nginx.conf in a directory of its own (its logs and limit zones). */
  const startNginx = async (): Promise<{ base: string; port: number; dir: string; p: ChildProcess }> => {
    const port = await freePort();
    const own = mkdtempSync(join(dir, 'nginx-'));
    const file = join(own, 'nginx.conf');
    writeFileSync(file, nginxTestConfig(port, srv.port, own));
    const p = await startProxy('nginx', ['-c', file, '-p', own], port);
    return { base: `http://127.0.0.1:${port}`, port, dir: own, p };
  };

  test('nginx: a burst of lab starts from one client is cut at the limit; its pages still load', async (t) => {
    need('nginx', ['-v'], 'nginx-light');
    const burst = nginxSetting(/limit_req\s+zone=containerlabs_create\s+burst=(\d+)/) ?? 0;
    const ngx = await startNginx();
    const client = '127.0.0.2';
    // An unknown lab: the server answers 404 at once and starts nothing, so every 429 is the proxy's.
    const start = () =>
      httpFrom(ngx.base, '/api/v1/sessions', {
        method: 'POST',
        body: '{"lab":"no-such-lab"}',
        localAddress: client,
      });
    const n = 3 * (burst + 1) + 10;
    const answers = await Promise.all(Array.from({ length: n }, start));
    const passed = answers.filter((a) => a.status !== 429);
    const refused = answers.filter((a) => a.status === 429);
    t.diagnostic(
      `${n} parallel starts: ${passed.length} reached the server, ${refused.length} got 429 (burst=${burst})`,
    );
    for (const a of passed) assert.equal(JSON.parse(a.body).error.code, 'unknown_lab', a.body);
    assert.ok(refused.length > 0, `no start of the burst was refused (${passed.length} reached the server)`);
    // Allowed at once: the first and `burst` more (and one the rate let through meanwhile).
    assert.ok(
      passed.length >= burst + 1 && passed.length <= burst + 2,
      `${passed.length} reached the server`,
    );
    for (const a of refused) {
      assert.equal(JSON.parse(a.body).error.code, 'rate_limited', a.body);
      assert.ok(a.body.length < 200, 'a short body');
      assert.match(String(a.headers['retry-after']), /^\d+$/);
    }
    // The same client still loads pages (a page needs some 20-30 requests at once)…
    const pages = await Promise.all(
      Array.from({ length: 30 }, (_, i) =>
        httpFrom(ngx.base, i % 2 ? '/' : '/api/v1/health', { localAddress: client }),
      ),
    );
    assert.deepEqual([...new Set(pages.map((a) => a.status))], [200], 'page GETs pass after the burst');
    // …and another client may start a lab.
    const other = await httpFrom(ngx.base, '/api/v1/sessions', {
      method: 'POST',
      body: '{"lab":"no-such-lab"}',
      localAddress: '127.0.0.4',
    });
    assert.equal(other.status, 404, other.body);
    assert.match(
      readFileSync(join(ngx.dir, 'containerlabs.access.log'), 'utf8'),
      /"POST \/api\/v1\/sessions HTTP\/1\.1" 429 /,
    );
    ngx.p.kill('SIGTERM');
  });

  test('nginx: one client cannot hold more requests at once than the limit', async (t) => {
    need('nginx', ['-v'], 'nginx-light');
    // 48 when the snippet sets no limit: then the extra request is not refused either.
    const limit = nginxSetting(/limit_conn\s+containerlabs_conn\s+(\d+)/) ?? 48;
    const ngx = await startNginx();
    const client = '127.0.0.3';
    // Requests held open like a terminal's WebSocket (or a slow client): headers sent, the
    // body still to come.
    const held: Socket[] = [];
    const hold = async () => {
      const sock = connect({ host: '127.0.0.1', port: ngx.port, localAddress: client });
      sock.on('error', () => {});
      await new Promise((r) => sock.once('connect', r));
      sock.write('POST /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n');
      sock.write('Content-Length: 1000\r\n\r\n{');
      held.push(sock);
    };
    try {
      for (let i = 0; i < limit; i++) await hold();
      const probe = () =>
        httpFrom(ngx.base, `/api/v1/health?token=${SECRET_TOKEN}`, { localAddress: client });
      let last = await probe();
      for (let i = 0; i < 50 && last.status !== 429; i++) {
        await sleep(100);
        last = await probe();
      }
      t.diagnostic(`with ${limit} requests held open, one more from the same client: ${last.status}`);
      assert.equal(last.status, 429, `request ${limit + 1} of one client was not refused: ${last.status}`);
      assert.equal(JSON.parse(last.body).error.code, 'rate_limited');
      const other = await httpFrom(ngx.base, '/api/v1/health', { localAddress: '127.0.0.4' });
      assert.equal(other.status, 200, 'another client is not affected');
      // One held request ends: the client may make one again.
      held.pop()!.destroy();
      await until(
        'a request to pass once one held request ended',
        async () => (await probe()).status === 200,
      );
    } finally {
      for (const sock of held) sock.destroy();
    }
    ngx.p.kill('SIGTERM');
    const logs = logsIn(ngx.dir);
    assert.ok(!logs.includes(SECRET_TOKEN), `a refused request's query string was logged:\n${logs}`);
  });

  test("nginx: a refused upgrade leaves no dead upstream connection to write the next request's query into the error log", async (t) => {
    need('nginx', ['-v'], 'nginx-light');
    const ngx = await startNginx();
    // The server answers a refused WebSocket upgrade with "Connection: keep-alive", then
    // closes the socket: an upstream connection kept for reuse is then dead, and the
    // request that picks it fails, is retried, and is written to the error log whole.
    const refused = `${ngx.base.replace(/^http/, 'ws')}/api/v1/sessions/no-such-session/terminals/host`;
    const rounds = 100;
    for (let i = 0; i < rounds; i++) {
      assert.notEqual(await socketOutcome(refused, { origin: ngx.base }), 'attached');
      const r = await fetch(`${ngx.base}/api/v1/health?token=${SECRET_TOKEN}-${i}`);
      assert.equal(r.status, 200);
    }
    ngx.p.kill('SIGTERM');
    const errors = readFileSync(join(ngx.dir, 'error.log'), 'utf8');
    const leaked = errors.split('\n').filter((l) => l.includes(SECRET_TOKEN));
    t.diagnostic(
      `${rounds} refused upgrades, each followed by a request: ${leaked.length} error-log lines with its query`,
    );
    assert.deepEqual(leaked, []);
  });

  test('Caddy (deploy/Caddyfile)', async (t) => {
    need('caddy', ['version'], 'caddy');
    const port = await freePort();
    const file = join(dir, 'Caddyfile');
    const logDir = mkdtempSync(join(dir, 'caddy-logs-'));
    writeFileSync(file, caddyTestConfig(port, srv.port, logDir));
    const env = { XDG_DATA_HOME: join(dir, 'data'), XDG_CONFIG_HOME: join(dir, 'config'), HOME: dir };
    const check = spawnSync('caddy', ['validate', '--config', file, '--adapter', 'caddyfile'], {
      encoding: 'utf8',
      env: { ...process.env, ...env },
    });
    assert.equal(check.status, 0, check.stderr);
    const p = await startProxy('caddy', ['run', '--config', file, '--adapter', 'caddyfile'], port, env);
    const s = await throughProxy(t, `http://127.0.0.1:${port}`, instance);
    const access = join(logDir, 'containerlabs.access.log');
    await logsKeepNoSecrets(
      t,
      `http://127.0.0.1:${port}`,
      () => (existsSync(access) ? logsIn(logDir) : ''),
      s,
    );
    p.kill('SIGTERM');
  });

  test('Caddy: a request the server cannot answer is logged without its query string', async (t) => {
    need('caddy', ['version'], 'caddy');
    const port = await freePort();
    const nobody = await freePort(); // nothing listens there: every request fails with 502
    const own = mkdtempSync(join(dir, 'caddy-'));
    const file = join(own, 'Caddyfile');
    writeFileSync(file, caddyTestConfig(port, nobody, own));
    const env = { XDG_DATA_HOME: join(own, 'data'), XDG_CONFIG_HOME: join(own, 'config'), HOME: own };
    const p = await startProxy('caddy', ['run', '--config', file, '--adapter', 'caddyfile'], port, env);
    const path = '/api/v1/sessions/abc/terminals/host';
    const r = await fetch(`http://127.0.0.1:${port}${path}?token=${SECRET_TOKEN}`, {
      headers: { referer: `http://127.0.0.1:${port}/?access=${SECRET_CODE}` },
    });
    assert.equal(r.status, 502);
    // Caddy's own log (errors included) goes to its standard error.
    await until('Caddy to log the failed request', () => output(p).includes(`"uri":"${path}`));
    t.diagnostic(
      output(p)
        .split('\n')
        .find((l) => l.includes(`"uri":"${path}`)) ?? '',
    );
    p.kill('SIGTERM');
    const text = `${output(p)}\n${logsIn(own)}`;
    for (const secret of [SECRET_TOKEN, SECRET_CODE]) {
      assert.ok(!text.includes(secret), `Caddy logged a secret (${secret}):\n${text}`);
    }
  });
});
