/**
 * The engine filter's HTTP side: a node:http server that takes Engine API requests,
 * decides with rules.ts, asks the engine what a container or exec is when a rule needs
 * it, and forwards what is allowed, rebuilt (path, query, JSON body, a handful of
 * headers). `exec/{id}/start` is an HTTP upgrade to a raw stream (the terminal's bytes);
 * once the engine answers 101 the two sockets are piped both ways.
 *
 * Refusals answer like the engine's own errors, `{"message": "..."}`, with 403 (not an
 * allowed call), 400 (malformed) or 413 (body too large), and one log line with the reason.
 * Nothing a client sends may end the process: every failure becomes a response or a
 * closed socket.
 */
import {
  Agent,
  createServer,
  request as httpRequest,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type Server,
  type ServerResponse,
  STATUS_CODES,
} from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from './log.ts';
import {
  type ContainerFacts,
  checkContainer,
  isRefusal,
  matchRequest,
  type Plan,
  type PlanOptions,
  planRequest,
  type Refusal,
  type Requirement,
} from './rules.ts';

/** Where the real engine listens: a unix socket, or host:port (plain HTTP). */
export type UpstreamAddress = { socketPath: string } | { host: string; port: number };

export interface EngineFilterOptions {
  upstream: UpstreamAddress;
  policy: PlanOptions;
  log: Logger;
  /** Largest request body accepted (default 256 KiB); a lab host's create body is ~10 KiB. */
  maxBodyBytes?: number;
  /** How long what the engine said about a container is reused (default 30 s). */
  cacheTtlMs?: number;
  /** How long an upgrade request's body may take to arrive (default 15 s). */
  upgradeBodyTimeoutMs?: number;
  now?: () => number;
}

const DEFAULT_MAX_BODY = 256 * 1024;
/** dockerode repeats the whole create body, seccomp profile included, in the query string. */
const MAX_HEADER_BYTES = 256 * 1024;
const MAX_REMEMBERED = 4096;
const MAX_TAPPED_RESPONSE = 64 * 1024;

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

/** What happened to a requirement: it holds, it does not, or the engine answered for us
 *  (no such container/exec, or an error), and that answer goes back to the client. */
type Satisfied = { ok: true } | Refusal | { engine: { status: number; body: Buffer } };

export class EngineFilter {
  readonly server: Server;
  readonly #opts: EngineFilterOptions;
  readonly #agent = new Agent({ keepAlive: true, maxSockets: 64 });
  readonly #maxBody: number;
  readonly #ttl: number;
  readonly #now: () => number;
  /** Container id → what the engine said, and until when it is reused. Labels and user
   *  of a container never change, so the cache only bounds memory and staleness of 404s. */
  readonly #containers = new Map<string, { facts: ContainerFacts; until: number }>();
  /** Exec id → its container, for execs created through this filter. */
  readonly #execs = new Map<string, string>();
  readonly #streams = new Set<Duplex>();

  constructor(opts: EngineFilterOptions) {
    this.#opts = opts;
    this.#maxBody = opts.maxBodyBytes ?? DEFAULT_MAX_BODY;
    this.#ttl = opts.cacheTtlMs ?? 30_000;
    this.#now = opts.now ?? Date.now;
    this.server = createServer({
      maxHeaderSize: MAX_HEADER_BYTES,
      headersTimeout: 15_000,
      requestTimeout: 60_000,
    });
    this.server.on('request', (req, res) => {
      this.#onRequest(req, res).catch((err) => this.#fail(res, err));
    });
    this.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      this.#track(socket);
      socket.on('error', () => socket.destroy());
      this.#onUpgrade(req, socket, head).catch((err) => {
        this.#opts.log.error({ err: String(err) }, 'upgrade failed');
        rawResponse(socket, 502, { message: 'engine filter: the engine call failed' });
      });
    });
    this.server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
      this.#opts.log.warn({ reason: err.code ?? err.message }, 'refused: malformed HTTP');
      if (socket.writable)
        rawResponse(socket, err.code === 'HPE_HEADER_OVERFLOW' ? 431 : 400, {
          message: 'engine filter: malformed HTTP request',
        });
      else socket.destroy();
    });
  }

  /** Stops listening and ends every connection and stream. */
  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeAllConnections();
    for (const s of this.#streams) s.destroy();
    this.#agent.destroy();
    await closed;
  }

  #track(s: Duplex): void {
    this.#streams.add(s);
    s.once('close', () => this.#streams.delete(s));
  }

  async #onRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = req.method ?? '';
    const matched = matchRequest(method, req.url ?? '', false);
    if (isRefusal(matched)) return this.#refuse(res, req, matched, true);
    const body = await readBody(req, this.#maxBody);
    if (isRefusal(body)) return this.#refuse(res, req, body, true);
    const plan = planRequest(matched, body, this.#opts.policy);
    if (isRefusal(plan)) return this.#refuse(res, req, plan, false);
    const sat = await this.#satisfy(plan.require);
    if ('refused' in sat) return this.#refuse(res, req, sat, false);
    if ('engine' in sat) return this.#answer(res, sat.engine.status, sat.engine.body);
    this.#opts.log.debug({ route: matched.route, method, path: pathOnly(matched.path) }, 'forwarded');
    await this.#forward(plan, res);
  }

  async #onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const method = req.method ?? '';
    const matched = matchRequest(method, req.url ?? '', true);
    if (isRefusal(matched)) return this.#refuseRaw(socket, req, matched);
    if (req.headers['transfer-encoding']) {
      return this.#refuseRaw(socket, req, {
        refused: true,
        status: 400,
        reason: 'a chunked upgrade request is not supported',
      });
    }
    const read = await readUpgradeBody(
      socket,
      head,
      req.headers,
      this.#maxBody,
      this.#opts.upgradeBodyTimeoutMs ?? 15_000,
    );
    if (isRefusal(read)) return this.#refuseRaw(socket, req, read);
    const plan = planRequest(matched, read.body, this.#opts.policy);
    if (isRefusal(plan)) return this.#refuseRaw(socket, req, plan);
    const sat = await this.#satisfy(plan.require);
    if ('refused' in sat) return this.#refuseRaw(socket, req, sat);
    if ('engine' in sat) return rawResponse(socket, sat.engine.status, sat.engine.body);
    if (socket.destroyed) return;
    this.#opts.log.debug(
      { route: matched.route, method, path: pathOnly(matched.path) },
      'forwarded (upgrade)',
    );

    const body = plan.body ?? '';
    const up = httpRequest({
      ...this.#opts.upstream,
      agent: false,
      method: 'POST',
      path: matched.path,
      headers: {
        host: 'docker',
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(body),
        connection: 'Upgrade',
        upgrade: 'tcp',
      },
    });
    const abort = () => up.destroy();
    socket.once('close', abort);
    up.on('upgrade', (upRes, upSocket, upHead) => {
      socket.off('close', abort);
      this.#track(upSocket);
      upSocket.on('error', () => upSocket.destroy());
      if (socket.destroyed) return void upSocket.destroy();
      socket.write(statusHead(upRes.statusCode ?? 101, upRes.statusMessage, upRes.rawHeaders));
      if (upHead.length > 0) socket.write(upHead);
      if (read.rest.length > 0) upSocket.write(read.rest);
      // Both halves close independently (a client may end stdin and still read output).
      upSocket.pipe(socket);
      socket.pipe(upSocket);
      socket.once('close', () => upSocket.destroy());
      upSocket.once('close', () => socket.destroy());
    });
    up.on('response', (upRes) => {
      // The engine refused the upgrade (no such exec, container stopped): pass its answer on.
      collect(upRes, MAX_TAPPED_RESPONSE).then(
        (b) => rawResponse(socket, upRes.statusCode ?? 502, b, upRes.headers['content-type']),
        () => socket.destroy(),
      );
    });
    up.on('error', (err) => {
      if (socket.destroyed) return; // the client left first: nothing to report
      this.#opts.log.error({ err: String(err), route: matched.route }, 'engine unreachable');
      rawResponse(socket, 502, { message: `engine filter: the engine is not reachable (${codeOf(err)})` });
    });
    up.end(body);
  }

  /** Checks a requirement, asking the engine (or the cache) about the container or exec. */
  async #satisfy(req: Requirement | undefined): Promise<Satisfied> {
    if (!req) return { ok: true };
    if (req.kind === 'exec') {
      if (this.#execs.has(req.id)) return { ok: true };
      const r = await this.#engineGet(`/exec/${req.id}/json`);
      if (r.status !== 200) return { engine: r };
      const containerId = parseJson(r.body)?.ContainerID;
      if (typeof containerId !== 'string' || !/^[0-9a-f]{64}$/.test(containerId)) {
        return { refused: true, status: 403, reason: 'the engine did not name the exec’s container' };
      }
      return this.#satisfy({ kind: 'container', id: containerId });
    }
    const cached = this.#containers.get(req.id);
    let facts = cached && cached.until > this.#now() ? cached.facts : undefined;
    if (!facts) {
      const r = await this.#engineGet(`/containers/${req.id}/json`);
      if (r.status !== 200) return { engine: r };
      const c = parseJson(r.body);
      const labels = c?.Config?.Labels ?? {};
      facts = { managed: labels['containerlabs.managed'] === 'true', user: String(c?.Config?.User ?? '') };
      this.#remember(this.#containers, req.id, { facts, until: this.#now() + this.#ttl });
    }
    return checkContainer(req, facts) ?? { ok: true };
  }

  #remember<V>(map: Map<string, V>, key: string, value: V): void {
    map.delete(key);
    map.set(key, value);
    if (map.size > MAX_REMEMBERED) map.delete(map.keys().next().value!);
  }

  #engineGet(path: string): Promise<{ status: number; body: Buffer }> {
    return new Promise((resolve, reject) => {
      const up = httpRequest({
        ...this.#opts.upstream,
        agent: this.#agent,
        method: 'GET',
        path,
        headers: { host: 'docker' },
      });
      up.on('response', (res) => {
        collect(res, MAX_TAPPED_RESPONSE).then(
          (body) => resolve({ status: res.statusCode ?? 502, body }),
          reject,
        );
      });
      up.on('error', reject);
      up.end();
    });
  }

  async #forward(plan: Plan, res: ServerResponse): Promise<void> {
    const { matched } = plan;
    const headers: Record<string, string | number> = { host: 'docker' };
    if (plan.body !== undefined) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = Buffer.byteLength(plan.body);
    } else if (matched.method === 'POST' || matched.method === 'DELETE') {
      headers['content-length'] = 0;
    }
    const up = httpRequest({
      ...this.#opts.upstream,
      agent: this.#agent,
      method: matched.method,
      path: matched.path,
      headers,
    });
    let clientGone = false;
    res.once('close', () => {
      // The client left before the answer was complete: stop asking the engine.
      if (!res.writableFinished) {
        clientGone = true;
        up.destroy();
      }
    });
    await new Promise<void>((resolve) => {
      up.on('response', (upRes) => {
        const status = upRes.statusCode ?? 502;
        if (matched.route === 'container.create' || matched.route === 'exec.create') {
          // Small JSON answers: keep the new id, so later calls on it need no lookup.
          collect(upRes, MAX_TAPPED_RESPONSE).then(
            (b) => {
              if (status === 201) this.#learn(plan, parseJson(b)?.Id);
              res.writeHead(status, forwardHeaders(upRes.headers));
              res.end(b);
              resolve();
            },
            () => {
              res.destroy();
              resolve();
            },
          );
          return;
        }
        res.writeHead(status, forwardHeaders(upRes.headers));
        upRes.pipe(res);
        upRes.once('end', resolve);
        upRes.once('error', () => {
          res.destroy();
          resolve();
        });
      });
      up.on('error', (err) => {
        if (clientGone) return resolve();
        this.#opts.log.error({ err: String(err), route: matched.route }, 'engine unreachable');
        if (!res.headersSent) {
          this.#answer(res, 502, { message: `engine filter: the engine is not reachable (${codeOf(err)})` });
        } else res.destroy();
        resolve();
      });
      up.end(plan.body);
    });
  }

  #learn(plan: Plan, id: unknown): void {
    if (typeof id !== 'string' || !/^[0-9a-f]{64}$/.test(id)) return;
    if (plan.matched.route === 'container.create') {
      const user = String((JSON.parse(plan.body!) as { User: string }).User);
      this.#remember(this.#containers, id, {
        facts: { managed: true, user },
        until: this.#now() + this.#ttl,
      });
    } else {
      this.#remember(this.#execs, id, plan.matched.id!);
    }
  }

  #refuse(res: ServerResponse, req: IncomingMessage, r: Refusal, bodyUnread: boolean): void {
    this.#logRefusal(req, r);
    // Unread body: close the connection rather than read (and discard) what is left.
    if (bodyUnread && !req.complete) res.setHeader('connection', 'close');
    this.#answer(res, r.status, { message: `engine filter: ${r.reason}` });
  }

  #refuseRaw(socket: Duplex, req: IncomingMessage, r: Refusal): void {
    this.#logRefusal(req, r);
    rawResponse(socket, r.status, { message: `engine filter: ${r.reason}` });
  }

  #logRefusal(req: IncomingMessage, r: Refusal): void {
    this.#opts.log.warn(
      {
        method: String(req.method).slice(0, 16),
        path: pathOnly(req.url ?? '').slice(0, 200),
        status: r.status,
        reason: r.reason,
      },
      'refused',
    );
  }

  #answer(res: ServerResponse, status: number, body: object | Buffer): void {
    if (res.headersSent) return void res.destroy();
    const text = Buffer.isBuffer(body) ? body : Buffer.from(JSON.stringify(body));
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': text.length });
    res.end(text);
  }

  #fail(res: ServerResponse, err: unknown): void {
    this.#opts.log.error({ err: String(err) }, 'request failed');
    this.#answer(res, 502, { message: 'engine filter: the engine call failed' });
  }
}

function pathOnly(url: string): string {
  const q = url.indexOf('?');
  return q < 0 ? url : url.slice(0, q);
}

function codeOf(err: unknown): string {
  return (err as NodeJS.ErrnoException).code ?? 'error';
}

// biome-ignore lint/suspicious/noExplicitAny: engine JSON is read field by field, defensively
function parseJson(b: Buffer): any {
  try {
    return JSON.parse(b.toString('utf8'));
  } catch {
    return undefined;
  }
}

function forwardHeaders(h: IncomingHttpHeaders): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(h)) if (v !== undefined && !HOP_BY_HOP.has(k)) out[k] = v;
  return out;
}

function statusHead(status: number, message: string | undefined, rawHeaders: string[]): string {
  let head = `HTTP/1.1 ${status} ${message ?? STATUS_CODES[status] ?? ''}\r\n`;
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) head += `${rawHeaders[i]}: ${rawHeaders[i + 1]}\r\n`;
  return `${head}\r\n`;
}

/** An HTTP response written straight to a socket (upgrade requests have no ServerResponse). */
function rawResponse(socket: Duplex, status: number, body: object | Buffer, type = 'application/json'): void {
  if (socket.destroyed) return;
  const text = Buffer.isBuffer(body) ? body : Buffer.from(JSON.stringify(body));
  const head = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\ncontent-type: ${type}\r\ncontent-length: ${text.length}\r\nconnection: close\r\n\r\n`;
  socket.end(Buffer.concat([Buffer.from(head), text]));
}

function collect(stream: IncomingMessage, max: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    stream.on('data', (c: Buffer) => {
      size += c.length;
      if (size > max) {
        stream.destroy();
        reject(new Error('response too large'));
      } else chunks.push(c);
    });
    stream.on('end', () => resolve(Buffer.concat(chunks)));
    stream.on('error', reject);
  });
}

function readBody(req: IncomingMessage, max: number): Promise<Buffer | Refusal> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > max) return Promise.resolve(tooLarge(max));
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    req.on('data', (c: Buffer) => {
      if (done) return;
      size += c.length;
      if (size > max) {
        done = true;
        req.pause();
        resolve(tooLarge(max));
      } else chunks.push(c);
    });
    req.on('end', () => {
      if (!done) resolve(Buffer.concat(chunks));
      done = true;
    });
    req.on('error', () => {
      if (!done) resolve({ refused: true, status: 400, reason: 'the request body was cut short' });
      done = true;
    });
  });
}

/** Reads an upgrade request's body (Content-Length bytes) from the socket; the bytes
 *  after it, if the client sent any already, are the start of the stream. */
function readUpgradeBody(
  socket: Duplex,
  head: Buffer,
  headers: IncomingHttpHeaders,
  max: number,
  timeoutMs: number,
): Promise<{ body: Buffer; rest: Buffer } | Refusal> {
  const length = Number(headers['content-length'] ?? 0);
  if (!Number.isInteger(length) || length < 0) {
    return Promise.resolve({ refused: true, status: 400, reason: 'bad content-length' });
  }
  if (length > max) return Promise.resolve(tooLarge(max));
  return new Promise((resolve) => {
    let buf = head;
    const done = (r: { body: Buffer; rest: Buffer } | Refusal) => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('close', onEnd);
      socket.pause();
      resolve(r);
    };
    const onData = (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      if (buf.length >= length) done({ body: buf.subarray(0, length), rest: buf.subarray(length) });
    };
    const onEnd = () => done({ refused: true, status: 400, reason: 'the request body was cut short' });
    // The server's request timeout does not cover an upgrade's body: a client that never
    // sends it must not hold the socket for ever.
    const timer = setTimeout(
      () => done({ refused: true, status: 408, reason: 'the request body did not arrive in time' }),
      timeoutMs,
    );
    if (buf.length >= length) return done({ body: buf.subarray(0, length), rest: buf.subarray(length) });
    socket.on('data', onData);
    socket.once('end', onEnd);
    socket.once('close', onEnd);
  });
}

function tooLarge(max: number): Refusal {
  return { refused: true, status: 413, reason: `request body over ${Math.round(max / 1024)} KiB` };
}
