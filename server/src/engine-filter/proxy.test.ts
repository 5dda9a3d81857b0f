/**
 * The filter's proxy against a fake engine (a node:http server on a unix socket in a temp
 * dir, answering like Docker 20.10 does): the real Docker adapter runs a whole session
 * through it, the exec stream is proxied both ways, refused calls never reach the fake
 * engine, and bad input gets an answer, not a crash.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, request, type Server } from 'node:http';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { after, before, beforeEach, describe, it } from 'node:test';
import Docker from 'dockerode';
import { testLab } from '../../../tests/unit-support/test-lab.ts';
import { readCgroup, readProcesses } from '../inspect/snapshot.ts';
import { labHostResources } from '../ops/admin.ts';
import { DockerRuntime } from '../runtime/docker/docker-runtime.ts';
import { knownCommands } from './known-commands.ts';
import { memoryLogger } from './log.ts';
import { EngineFilter } from './proxy.ts';

const hex = (c: string) => c.repeat(64);
const FOREIGN = hex('f');

interface Seen {
  method: string;
  url: string;
  body: string;
}

/** A fake engine: remembers containers and execs, answers the adapter's calls. */
class FakeEngine {
  readonly server: Server;
  readonly seen: Seen[] = [];
  readonly containers = new Map<string, { labels: Record<string, string>; user: string }>([
    [FOREIGN, { labels: {}, user: '1000:1000' }],
  ]);
  readonly execs = new Map<string, { container: string; tty: boolean }>();
  #n = 0;

  constructor() {
    this.server = createServer((req, res) => {
      this.#body(req).then((body) => {
        this.seen.push({ method: req.method!, url: req.url!, body });
        const json = (status: number, v: unknown) => {
          res.writeHead(status, { 'content-type': 'application/json', 'api-version': '1.41' });
          res.end(JSON.stringify(v));
        };
        const path = req.url!.split('?')[0]!.replace(/^\/v1\.\d+/, '');
        if (path === '/_ping') return res.end('OK');
        if (path === '/version') return json(200, { Version: '20.10.24', ApiVersion: '1.41' });
        if (path === '/info') return json(200, { CgroupVersion: '1', SecurityOptions: ['name=seccomp'] });
        if (path === '/containers/json') return json(200, []);
        if (path === '/containers/create') {
          const b = JSON.parse(body);
          const id = hex(String(++this.#n % 10));
          this.containers.set(id, { labels: b.Labels, user: b.User });
          return json(201, { Id: id, Warnings: [] });
        }
        const m = /^\/containers\/([0-9a-f]{64})(\/\w+)?$/.exec(path);
        if (m) {
          const c = this.containers.get(m[1]!);
          if (!c) return json(404, { message: `No such container: ${m[1]}` });
          if (m[2] === '/start') return res.writeHead(204).end();
          if (m[2] === '/json')
            return json(200, {
              Id: m[1],
              Config: { Labels: c.labels, User: c.user },
              State: { Running: true },
            });
          if (m[2] === '/exec') {
            const id = hex(String.fromCharCode(97 + (++this.#n % 5)));
            this.execs.set(id, { container: m[1]!, tty: JSON.parse(body).Tty });
            return json(201, { Id: id });
          }
          if (!m[2] && req.method === 'DELETE') {
            this.containers.delete(m[1]!);
            return res.writeHead(204).end();
          }
        }
        const x = /^\/exec\/([0-9a-f]{64})\/(json|resize)$/.exec(path);
        if (x) {
          const e = this.execs.get(x[1]!);
          if (!e) return json(404, { message: `No such exec instance: ${x[1]}` });
          if (x[2] === 'resize') return res.writeHead(200).end();
          return json(200, { ID: x[1], ContainerID: e.container, Running: false, ExitCode: 0 });
        }
        json(200, { reached: 'the fake engine' });
      });
    });
    // exec start: 101, then a TTY exec echoes its input; a plain one writes one
    // multiplexed stdout frame (Docker's 8-byte header) and ends.
    this.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      const length = Number(req.headers['content-length'] ?? 0);
      let buf = head;
      const go = () => {
        socket.removeAllListeners('data');
        this.seen.push({ method: req.method!, url: req.url!, body: buf.subarray(0, length).toString() });
        const id = /^(?:\/v1\.\d+)?\/exec\/([0-9a-f]{64})\/start$/.exec(req.url!)?.[1];
        const e = id ? this.execs.get(id) : undefined;
        if (!e) {
          socket.end(
            'HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\ncontent-length: 31\r\n\r\n{"message":"No such exec: xyz"}',
          );
          return;
        }
        socket.write(
          'HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n',
        );
        const rest = buf.subarray(length);
        if (e.tty) {
          if (rest.length) socket.write(rest);
          socket.on('data', (d: Buffer) => socket.write(d));
          socket.on('end', () => socket.end('[stdin closed]'));
        } else {
          const out = Buffer.from('fake output\n');
          const header = Buffer.from([1, 0, 0, 0, 0, 0, 0, out.length]);
          socket.end(Buffer.concat([header, out]));
        }
      };
      if (buf.length >= length) return go();
      socket.on('data', (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        if (buf.length >= length) go();
      });
    });
  }

  #body(req: IncomingMessage): Promise<string> {
    return new Promise((resolve) => {
      let b = '';
      req.setEncoding('utf8');
      req.on('data', (c) => {
        b += c;
      });
      req.on('end', () => resolve(b));
    });
  }
}

function raw(sock: string, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = connect(sock);
    let out = '';
    c.on('data', (d) => {
      out += d;
    });
    c.on('end', () => resolve(out));
    c.on('error', reject);
    c.write(text);
  });
}

function http(
  sock: string,
  method: string,
  path: string,
  body?: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: sock, method, path, headers }, (res) => {
      let b = '';
      res.on('data', (c) => {
        b += c;
      });
      res.on('end', () => resolve({ status: res.statusCode!, body: b }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('engine filter proxy (fake engine)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cl-filter-'));
  const engineSock = join(dir, 'engine.sock');
  const filterSock = join(dir, 'filter.sock');
  const engine = new FakeEngine();
  const log = memoryLogger();
  let filter: EngineFilter;

  before(async () => {
    engine.server.listen(engineSock);
    await once(engine.server, 'listening');
    filter = new EngineFilter({
      upstream: { socketPath: engineSock },
      policy: { commands: await knownCommands() },
      log,
      maxBodyBytes: 64 * 1024,
      upgradeBodyTimeoutMs: 300,
    });
    filter.server.listen(filterSock);
    await once(filter.server, 'listening');
  });

  after(async () => {
    await filter.close();
    engine.server.closeAllConnections();
    engine.server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  beforeEach(() => {
    engine.seen.length = 0;
    log.lines.length = 0;
  });

  const refusals = () => log.lines.filter((l) => l.msg === 'refused');

  it('the real Docker adapter runs a whole session through the filter, nothing refused', async () => {
    const runtime = new DockerRuntime({
      docker: new Docker({ socketPath: filterSock }),
      imageFor: async () => 'containerlabs/lab-processes:0123456789ab',
    });
    assert.equal((await runtime.info()).reachable, true);
    const host = await runtime.createLabHost({
      lab: testLab(),
      sessionId: 's-1',
      instance: 'unit',
      expiresAt: new Date(Date.now() + 60_000),
      deadline: new Date(Date.now() + 120_000),
      pooled: false,
    });
    const term = await runtime.openTerminal(host.id, testLab().terminals[1]!, { cols: 80, rows: 24 });
    term.stream.write('hello through the filter');
    const [echo] = (await once(term.stream, 'data')) as [Buffer];
    assert.equal(echo.toString(), 'hello through the filter');
    await term.resize(100, 30);
    term.close();
    assert.equal(await term.exited, 0);

    // The panels' and the admin API's commands, as the server runs them.
    await readProcesses(runtime, host.id);
    await readCgroup(runtime, host.id);
    const res = await labHostResources(runtime, host.id);
    assert.ok(!('error' in res), JSON.stringify(res));
    const r = await runtime.exec(host.id, ['sh', '-c', 'not a known command']).catch((e: Error) => e);
    assert.ok(r instanceof Error, 'an unknown command is refused');
    assert.equal((await runtime.listLabHosts()).length, 0);
    await runtime.removeLabHost(host.id);

    const refused = refusals();
    assert.equal(refused.length, 1, JSON.stringify(refused));
    assert.match(String(refused[0]!.reason), /Cmd is not a command the server runs/);
    const reached = engine.seen.map(
      (s) => `${s.method} ${s.url.split('?')[0]!.replace(/[0-9a-f]{64}/g, '{id}')}`,
    );
    for (const call of [
      'GET /version',
      'GET /info',
      'POST /containers/create',
      'POST /containers/{id}/start',
      'POST /containers/{id}/exec',
      'POST /exec/{id}/start',
      'POST /exec/{id}/resize',
      'GET /exec/{id}/json',
      'GET /containers/json',
      'DELETE /containers/{id}',
    ]) {
      assert.ok(reached.includes(call), `${call} reached the engine (${reached.join(', ')})`);
    }
    // The create's query string (dockerode repeats the body there) was not forwarded.
    const create = engine.seen.find((s) => s.url.startsWith('/containers/create'))!;
    assert.equal(create.url, '/containers/create');
    assert.equal(JSON.parse(create.body).HostConfig.Privileged, false);
  });

  it('exec start: the stream goes both ways, bytes sent with the request included, half-close too', async () => {
    // An exec the filter did not create but whose container is managed is allowed too.
    const managed = hex('1');
    engine.containers.set(managed, { labels: { 'containerlabs.managed': 'true' }, user: '1000:1000' });
    const exec = hex('e');
    engine.execs.set(exec, { container: managed, tty: true });
    const body = '{"Tty":true}';
    const c: Socket = connect(filterSock);
    let out = '';
    c.on('data', (d) => {
      out += d;
    });
    c.write(
      `POST /v1.41/exec/${exec}/start HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n` +
        `Content-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}early`,
    );
    const until = async (re: RegExp) => {
      for (let i = 0; i < 200 && !re.test(out); i++) await new Promise((r) => setTimeout(r, 10));
      assert.match(out, re);
    };
    await until(/^HTTP\/1\.1 101 UPGRADED\r\n[\s\S]*\r\n\r\nearly/);
    c.write('-later');
    await until(/early-later$/);
    c.end();
    await until(/\[stdin closed\]$/);
    assert.deepEqual(refusals(), []);
    const start = engine.seen.find((s) => s.url.includes('/start'))!;
    assert.deepEqual(JSON.parse(start.body), { Tty: true });
  });

  it('an upgrade whose body never comes is answered 408 and closed', async () => {
    const t0 = performance.now();
    const reply = await raw(
      filterSock,
      `POST /exec/${hex('9')}/start HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 20\r\n\r\n{"Tty"`,
    );
    assert.match(reply, /^HTTP\/1\.1 408 /);
    assert.ok(performance.now() - t0 < 5000);
    assert.deepEqual(engine.seen, []);
  });

  it('exec start of an exec the engine does not know: its 404 comes back', async () => {
    const reply = await raw(
      filterSock,
      `POST /exec/${hex('9')}/start HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 2\r\n\r\n{}`,
    );
    assert.match(reply, /^HTTP\/1\.1 404 /);
    assert.match(reply, /No such exec instance/);
  });

  it('refused calls never reach the engine, each with a 403 JSON message and a log line', async () => {
    engine.containers.set(hex('2'), { labels: { 'containerlabs.managed': 'true' }, user: '1000:1000' });
    const execBody = JSON.stringify({
      Cmd: ['/usr/local/bin/lab-shell', 'host'],
      User: '1000:1000',
      Tty: true,
    });
    const cases: [string, string, string?][] = [
      ['GET', '/images/json'],
      ['POST', '/images/create?fromImage=busybox'],
      ['POST', '/volumes/create', '{"Name":"x"}'],
      ['GET', '/containers/json?all=1'],
      ['GET', '/events'],
      ['GET', '/system/df'],
      ['POST', `/containers/${FOREIGN}/exec`, execBody],
      ['POST', `/containers/${FOREIGN}/start`],
      ['DELETE', `/containers/${FOREIGN}?force=true`],
      ['GET', `/containers/${FOREIGN}/json`],
      ['POST', `/containers/${hex('2')}/exec`, execBody.replace('1000:1000', '0:0')],
      ['POST', `/containers/${hex('2')}/exec`, execBody.replace('1000:1000', '1001:1001')],
      ['POST', `/containers/${hex('2')}/attach?stream=1&stdin=1`],
      ['POST', `/exec/${hex('9')}/start`, '{}'],
      ['GET', '/containers/%2e%2e/images/json'],
      ['GET', '/containers%2Fjson'],
      ['GET', '//containers/json'],
      ['GET', '/v1.41/../images/json'],
      ['POST', '/containers/create', '{"Image":"debian","HostConfig":{"Privileged":true}}'],
    ];
    for (const [method, path, body] of cases) {
      const r = await http(
        filterSock,
        method,
        path,
        body,
        body ? { 'content-type': 'application/json' } : {},
      );
      assert.equal(r.status, 403, `${method} ${path}: ${r.status} ${r.body}`);
      assert.match(JSON.parse(r.body).message, /^engine filter: /);
    }
    // The filter asked about containers (inspect), and nothing else reached the engine.
    const reached = engine.seen.filter((s) => !/^\/containers\/[0-9a-f]{64}\/json$/.test(s.url));
    assert.deepEqual(reached, []);
    assert.equal(refusals().length, cases.length);
    for (const l of refusals()) assert.ok(typeof l.reason === 'string' && l.reason.length > 0);
  });

  it('malformed JSON is a 400, an oversized body a 413, and the engine is never asked', async () => {
    const bad = await http(filterSock, 'POST', '/containers/create', '{"Image": ', {
      'content-type': 'application/json',
    });
    assert.equal(bad.status, 400);
    assert.match(JSON.parse(bad.body).message, /malformed JSON/);
    const big = await http(filterSock, 'POST', '/containers/create', 'x'.repeat(100 * 1024));
    assert.equal(big.status, 413);
    const chunked = await new Promise<number>((resolve, reject) => {
      const req = request({ socketPath: filterSock, method: 'POST', path: '/containers/create' }, (res) => {
        res.resume();
        resolve(res.statusCode!);
      });
      req.on('error', reject);
      // Chunked, no length announced: the limit still applies as the bytes arrive.
      for (let i = 0; i < 100; i++) req.write('x'.repeat(1024));
      req.end();
    });
    assert.equal(chunked, 413);
    assert.deepEqual(engine.seen, []);
  });

  it('garbage on the socket gets a 400 and the filter keeps answering', async () => {
    assert.match(await raw(filterSock, 'NOT HTTP AT ALL\r\n\r\n'), /^HTTP\/1\.1 400/);
    assert.match(
      await raw(filterSock, `GET /${'a'.repeat(300 * 1024)} HTTP/1.1\r\nHost: x\r\n\r\n`),
      /^HTTP\/1\.1 431/,
    );
    const ping = await http(filterSock, 'GET', '/_ping');
    assert.equal(ping.status, 200);
    assert.equal(ping.body, 'OK');
  });

  it('an engine that is down gets a 502 with a message, not a crash', async () => {
    const down = new EngineFilter({
      upstream: { socketPath: join(dir, 'nothing-here.sock') },
      policy: { commands: [] },
      log: memoryLogger(),
    });
    const sock = join(dir, 'down.sock');
    down.server.listen(sock);
    await once(down.server, 'listening');
    try {
      const r = await http(sock, 'GET', '/version');
      assert.equal(r.status, 502);
      assert.match(JSON.parse(r.body).message, /not reachable \(ENOENT\)/);
      const e = await http(sock, 'POST', `/containers/${hex('2')}/start`);
      assert.equal(e.status, 502);
    } finally {
      await down.close();
    }
  });
});
