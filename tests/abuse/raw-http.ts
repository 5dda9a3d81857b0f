/**
 * Raw HTTP/1.1 and WebSocket-upgrade requests over a plain TCP socket to our own server on
 * loopback: the request line is sent byte for byte as given, so a test can try spellings
 * that `fetch` and `ws` would normalise first (`/./`, `%73`, `//`, `;`).
 *
 * For an upgrade that the server accepts (101), the first WebSocket frame it sends decides
 * what happened: a text frame is the terminal talking (`attached`: the socket got through),
 * a close frame carries the refusal's close code.
 */
import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';

export interface RawReply {
  status: number;
  headers: Record<string, string>;
  body: string;
  /** Upgrades only: what the first frame after 101 was. */
  ws?: { kind: 'text'; text: string } | { kind: 'close'; code: number; reason: string } | { kind: 'none' };
}

export interface RawRequest {
  method: string;
  /** Sent exactly as given (no normalisation, no escaping). */
  target: string;
  headers?: Record<string, string>;
  body?: string;
  /** Send a WebSocket upgrade. */
  upgrade?: boolean;
  /** Source address on loopback (127.0.0.x). */
  localAddress?: string;
  timeoutMs?: number;
}

export function rawRequest(port: number, req: RawRequest): Promise<RawReply> {
  const headers: Record<string, string> = { host: `127.0.0.1:${port}`, ...req.headers };
  if (req.upgrade) {
    headers.connection = 'Upgrade';
    headers.upgrade = 'websocket';
    headers['sec-websocket-version'] = '13';
    headers['sec-websocket-key'] = randomBytes(16).toString('base64');
  } else {
    headers.connection = 'close';
  }
  if (req.body !== undefined) headers['content-length'] = String(Buffer.byteLength(req.body));
  const head =
    `${req.method} ${req.target} HTTP/1.1\r\n` +
    Object.entries(headers)
      .map(([k, v]) => `${k}: ${v}\r\n`)
      .join('') +
    '\r\n';
  return new Promise((resolve, reject) => {
    const sock = connect({ host: '127.0.0.1', port, localAddress: req.localAddress ?? '127.0.0.1' });
    let buf = Buffer.alloc(0);
    let settled = false;
    const finish = (r: RawReply | Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      sock.destroy();
      if (r instanceof Error) reject(r);
      else resolve(r);
    };
    const timer = setTimeout(
      () =>
        finish(new Error(`no answer to ${req.method} ${req.target} within ${req.timeoutMs ?? 10_000} ms`)),
      req.timeoutMs ?? 10_000,
    );
    const parse = (final: boolean) => {
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) {
        if (final) finish(new Error(`connection closed before a response to ${req.method} ${req.target}`));
        return;
      }
      const lines = buf.subarray(0, end).toString('latin1').split('\r\n');
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? '')?.[1] ?? 0);
      const hs: Record<string, string> = {};
      for (const l of lines.slice(1)) {
        const i = l.indexOf(':');
        if (i > 0) hs[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
      }
      const rest = buf.subarray(end + 4);
      if (status === 101) {
        const frame = firstFrame(rest);
        if (frame) finish({ status, headers: hs, body: '', ws: frame });
        else if (final) finish({ status, headers: hs, body: '', ws: { kind: 'none' } });
        return;
      }
      const len = hs['content-length'] !== undefined ? Number(hs['content-length']) : undefined;
      const noBody = req.method === 'HEAD' || status === 204 || status === 304;
      if (noBody || (len !== undefined && rest.length >= len) || final) {
        finish({ status, headers: hs, body: noBody ? '' : rest.toString('utf8') });
      }
    };
    sock.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      parse(false);
    });
    sock.on('end', () => parse(true));
    sock.on('close', () => parse(true));
    sock.on('error', (err) => finish(err));
    sock.write(head + (req.body ?? ''));
  });
}

/** The first complete (unmasked, server-sent) WebSocket frame in `b`, if any. */
function firstFrame(b: Buffer): RawReply['ws'] | undefined {
  if (b.length < 2) return undefined;
  const opcode = b[0]! & 0x0f;
  let len = b[1]! & 0x7f;
  let off = 2;
  if (len === 126) {
    if (b.length < 4) return undefined;
    len = b.readUInt16BE(2);
    off = 4;
  } else if (len === 127) {
    if (b.length < 10) return undefined;
    len = Number(b.readBigUInt64BE(2));
    off = 10;
  }
  if (b.length < off + len) return undefined;
  const payload = b.subarray(off, off + len);
  if (opcode === 0x8) {
    return {
      kind: 'close',
      code: payload.length >= 2 ? payload.readUInt16BE(0) : 1005,
      reason: payload.subarray(2).toString('utf8'),
    };
  }
  return { kind: 'text', text: payload.toString('utf8') };
}
