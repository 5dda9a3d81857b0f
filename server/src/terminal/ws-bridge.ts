/**
 * Joins one WebSocket to one Terminal: binary frames are raw bytes, text frames JSON
 * control messages (protocol.ts). Flow control both ways; the socket owns nothing but
 * itself: closing it detaches, the shell lives on for a reconnect.
 */
import type { WebSocket } from 'ws';
import { HIGH_WATER, LOW_WATER, parseClientMessage, type ServerMessage } from './protocol.ts';
import type { Terminal, TerminalSink } from './terminal.ts';

const HEARTBEAT_MS = 25_000;

export interface BridgeLog {
  warn(fields: Record<string, unknown>, msg: string): void;
}

export function bridge(ws: WebSocket, term: Terminal, log: BridgeLog): void {
  let inFlight = 0;
  let sinkPaused = false;
  let alive = true;

  const send = (data: Buffer | string, binary: boolean, onSent?: () => void) => {
    if (ws.readyState !== ws.OPEN) return;
    ws.send(data, { binary }, onSent ? () => onSent() : undefined);
  };

  const sink: TerminalSink = {
    output(chunk) {
      if (ws.readyState !== ws.OPEN) return;
      inFlight += chunk.length;
      send(chunk, true, () => {
        inFlight -= chunk.length;
        if (sinkPaused && inFlight < LOW_WATER) {
          sinkPaused = false;
          term.setSinkPaused(false);
        }
      });
      if (!sinkPaused && inFlight > HIGH_WATER) {
        sinkPaused = true;
        term.setSinkPaused(true);
      }
    },
    control(msg: ServerMessage) {
      send(JSON.stringify(msg), false);
    },
    close(code, reason) {
      if (ws.readyState === ws.OPEN || ws.readyState === ws.CONNECTING) ws.close(code, reason);
    },
  };

  ws.on('message', (data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean) => {
    const buf = Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data);
    if (isBinary) {
      if (!term.input(buf)) {
        // The shell's input is backed up: stop reading the socket until it drains.
        ws.pause();
        term.onInputDrain(() => ws.resume());
      }
      return;
    }
    const msg = parseClientMessage(buf.toString('utf8'));
    if (!msg) {
      log.warn({ terminal: term.def.name, bytes: buf.length }, 'ignored a malformed control message');
      sink.control({
        type: 'error',
        code: 'bad_message',
        message: 'Unknown or malformed control message; ignored.',
      });
      return;
    }
    switch (msg.type) {
      case 'resize':
        term.resize(msg.cols, msg.rows);
        break;
      case 'pause':
        term.setClientPaused(true);
        break;
      case 'resume':
        term.setClientPaused(false);
        break;
      case 'ping':
        sink.control(msg.t === undefined ? { type: 'pong' } : { type: 'pong', t: msg.t });
        break;
    }
  });

  // A peer that vanished without a close frame would keep the terminal attached (and the
  // session safe from idle reaping) forever: ping it, drop it when it stops answering.
  ws.on('pong', () => {
    alive = true;
  });
  const heartbeat = setInterval(() => {
    if (!alive) {
      ws.terminate();
      return;
    }
    alive = false;
    ws.ping();
  }, HEARTBEAT_MS);
  heartbeat.unref();

  ws.on('close', () => {
    clearInterval(heartbeat);
    term.detach(sink);
  });
  // Socket errors are logged once, by the app's WebSocket error handler (app.ts); the
  // socket then closes and 'close' detaches.
  ws.on('error', () => {});

  term.attach(sink);
}
