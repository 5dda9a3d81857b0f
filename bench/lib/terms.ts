/**
 * One interface over the three terminal transports the bench drives, so the echo and
 * throughput measurements are the same code for each:
 *   - WsTerm: a WebSocket whose binary frames are raw terminal bytes both ways (ours, and
 *     the floor server in floor-server.ts); text frames are control messages.
 *   - WettyTerm: wetty's socket.io events (`input`, `data`, `resize`, `commit`).
 */
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { WebSocket } from 'ws';

export interface ByteTerm {
  readonly kind: string;
  /** Send keystrokes (as typed: `\r` for Enter). */
  send(text: string): void;
  /** Subscribe to output; the returned function unsubscribes. `text` is latin1/utf8 text. */
  onData(cb: (bytes: number, text: string) => void): () => void;
  close(): Promise<void>;
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: terminal escapes are control characters
const ESCAPES = /\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07]*(\x07|\x1b\\)|\x1b[()][0-9A-Za-z]|\x1b[=>]/g;

/** Terminal output without escape sequences and carriage returns. */
export function plain(text: string): string {
  return text.replace(ESCAPES, '').replace(/\r/g, '');
}

/** Wait until `re` matches the (plain) output received from now on. Keeps only a tail. */
export function waitForText(term: ByteTerm, re: RegExp, timeoutMs = 15_000): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => {
      off();
      reject(
        new Error(
          `${term.kind}: timed out waiting for ${re}; last output: ${JSON.stringify(plain(buf).slice(-300))}`,
        ),
      );
    }, timeoutMs);
    const off = term.onData((_n, text) => {
      buf = (buf + text).slice(-8192);
      if (re.test(plain(buf))) {
        clearTimeout(timer);
        off();
        resolve(buf);
      }
    });
  });
}

/** A WebSocket terminal: ours (`/api/v1/sessions/:id/terminals/:name?ticket=…`) or the floor. */
export class WsTerm implements ByteTerm {
  readonly kind: string;
  readonly ws: WebSocket;
  readonly controls: { at: number; msg: Record<string, unknown> }[] = [];
  /** performance.now() of the socket's open, first control message and first output byte. */
  openedAt = 0;
  firstControlAt = 0;
  firstByteAt = 0;
  closeCode: number | null = null;
  #subs = new Set<(n: number, t: string) => void>();

  private constructor(kind: string, ws: WebSocket) {
    this.kind = kind;
    this.ws = ws;
    ws.on('message', (data: Buffer, binary: boolean) => {
      const now = performance.now();
      if (binary) {
        if (!this.firstByteAt) this.firstByteAt = now;
        if (this.#subs.size === 0) return;
        const text = data.toString('latin1');
        for (const s of this.#subs) s(data.length, text);
      } else {
        if (!this.firstControlAt) this.firstControlAt = now;
        try {
          this.controls.push({ at: now, msg: JSON.parse(data.toString()) });
        } catch {}
      }
    });
    ws.on('close', (code) => {
      this.closeCode = code;
    });
    ws.on('error', () => {});
  }

  static open(kind: string, url: string, timeoutMs = 15_000): Promise<WsTerm> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, { perMessageDeflate: false });
      const t = new WsTerm(kind, ws);
      const timer = setTimeout(() => {
        ws.terminate();
        reject(new Error(`${kind}: WebSocket did not open within ${timeoutMs} ms`));
      }, timeoutMs);
      ws.once('open', () => {
        clearTimeout(timer);
        t.openedAt = performance.now();
        resolve(t);
      });
      ws.once('unexpected-response', (_q, res) => {
        clearTimeout(timer);
        reject(new Error(`${kind}: WebSocket refused with HTTP ${res.statusCode}`));
      });
      ws.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
  }

  send(text: string): void {
    this.ws.send(Buffer.from(text, 'utf8'), { binary: true });
  }

  onData(cb: (bytes: number, text: string) => void): () => void {
    this.#subs.add(cb);
    return () => this.#subs.delete(cb);
  }

  close(): Promise<void> {
    if (this.closeCode !== null || this.ws.readyState === WebSocket.CLOSED) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.ws.terminate();
        resolve();
      }, 3000);
      this.ws.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
      this.ws.close();
    });
  }
}

interface IoSocket {
  connected: boolean;
  on(ev: string, cb: (...a: unknown[]) => void): IoSocket;
  once(ev: string, cb: (...a: unknown[]) => void): IoSocket;
  emit(ev: string, ...a: unknown[]): IoSocket;
  disconnect(): IoSocket;
}

/**
 * wetty's protocol (read from wetty 3.x, build/server/spawn.js and its client): socket.io
 * at `<base>/socket.io`; the server emits `login` once the pty runs, `data` (string,
 * batched for up to 2 ms or 512 KiB), `logout`; the client emits `input` (string),
 * `resize` ({cols, rows}) and `commit` (characters it has processed: wetty pauses the pty
 * above 2 MiB unacknowledged and resumes below 512 KiB). The bench acknowledges every
 * 64 KiB, as fast as a browser whose xterm.js keeps up.
 */
export class WettyTerm implements ByteTerm {
  readonly kind = 'wetty';
  readonly socket: IoSocket;
  #subs = new Set<(n: number, t: string) => void>();
  #unacked = 0;

  private constructor(socket: IoSocket) {
    this.socket = socket;
    socket.on('data', (d: unknown) => {
      const text = typeof d === 'string' ? d : Buffer.from(d as Uint8Array).toString('utf8');
      this.#unacked += text.length;
      if (this.#unacked >= 65536) {
        socket.emit('commit', this.#unacked);
        this.#unacked = 0;
      }
      for (const s of this.#subs) s(text.length, text);
    });
  }

  /** `peerDir`: where wetty (and its socket.io-client) was installed. */
  static open(
    peerDir: string,
    origin: string,
    base: string,
    size: { cols: number; rows: number },
  ): Promise<WettyTerm> {
    const require = createRequire(join(peerDir, 'package.json'));
    const { io } = require('socket.io-client') as {
      io: (url: string, opts: Record<string, unknown>) => IoSocket;
    };
    return new Promise((resolve, reject) => {
      const socket = io(origin, {
        path: `${base.replace(/\/*$/, '')}/socket.io`,
        // Straight to WebSocket, as ours: no long-polling first.
        transports: ['websocket'],
        reconnection: false,
        forceNew: true,
      });
      const t = new WettyTerm(socket);
      const timer = setTimeout(() => {
        socket.disconnect();
        reject(new Error('wetty: no login within 15 s'));
      }, 15_000);
      socket.once('connect_error', (err: unknown) => {
        clearTimeout(timer);
        reject(err instanceof Error ? err : new Error(String(err)));
      });
      socket.once('login', () => {
        clearTimeout(timer);
        socket.emit('resize', size);
        resolve(t);
      });
    });
  }

  send(text: string): void {
    this.socket.emit('input', text);
  }

  onData(cb: (bytes: number, text: string) => void): () => void {
    this.#subs.add(cb);
    return () => this.#subs.delete(cb);
  }

  close(): Promise<void> {
    if (!this.socket.connected) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, 2000);
      this.socket.once('disconnect', () => {
        clearTimeout(timer);
        resolve();
      });
      this.socket.disconnect();
    });
  }
}
