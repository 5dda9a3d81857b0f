/**
 * One interface over the terminal transports the bench drives, so the echo and
 * throughput measurements are the same code for each:
 *   - our terminal protocol (ours, and the floor server in floor-server.ts, which speaks
 *     the least of it): the tests' own terminal client, tests/support/terminal.ts, which
 *     is the browser's TerminalClient on `ws`;
 *   - WettyTerm: wetty's socket.io events (`input`, `data`, `resize`, `commit`).
 */
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { plain } from '../../tests/support/terminal.ts';

export interface ByteTerm {
  /** Which path it is, for messages. */
  readonly label: string;
  /** Send keystrokes (as typed: `\r` for Enter). */
  send(text: string): void;
  /** Subscribe to output; the returned function unsubscribes. `text` is latin1/utf8 text. */
  onData(cb: (bytes: number, text: string) => void): () => void;
  close(): Promise<void>;
}

/** Wait until `re` matches the (plain) output received from now on. Keeps only a tail. */
export function waitForText(term: ByteTerm, re: RegExp, timeoutMs = 15_000): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => {
      off();
      reject(
        new Error(
          `${term.label}: timed out waiting for ${re}; last output: ${JSON.stringify(plain(buf).slice(-300))}`,
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
  readonly label = 'wetty';
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
