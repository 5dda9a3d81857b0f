/**
 * The floor: the least a browser terminal can be. node:http + ws + node-pty, one host bash
 * per WebSocket, binary frames = raw bytes both ways, a text frame `{"type":"resize"}` to
 * resize; the one message it sends is `attached`, so the same client (the browser's
 * TerminalClient, which types only once attached) drives the floor and ours. Flow control
 * only as much as needed not to buffer without bound (the same in-flight counting
 * ws-bridge.ts does). No sessions, tokens, containers, replay or logs.
 *
 *   node bench/floor-server.ts      → prints {"port":N} on stdout once listening on 127.0.0.1
 */
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import * as pty from 'node-pty';
import { WebSocketServer } from 'ws';

const HIGH_WATER = 512 * 1024;
const LOW_WATER = 128 * 1024;

const server = createServer((_req, res) => {
  res.writeHead(404).end();
});
const wss = new WebSocketServer({ server, maxPayload: 64 * 1024, perMessageDeflate: false });

wss.on('connection', (ws, req) => {
  const q = new URL(req.url ?? '/', 'http://x').searchParams;
  const p = pty.spawn('/bin/bash', ['--noprofile', '--norc', '-i'], {
    name: 'xterm-256color',
    cols: Number(q.get('cols')) || 80,
    rows: Number(q.get('rows')) || 24,
    cwd: tmpdir(),
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: tmpdir(),
      TERM: 'xterm-256color',
      LANG: 'C.UTF-8',
      PS1: 'bench$ ',
    },
    encoding: null, // raw Buffers, as our exec stream gives
  });
  let inFlight = 0;
  let paused = false;
  p.onData((data) => {
    const chunk = data as unknown as Buffer;
    inFlight += chunk.length;
    ws.send(chunk, { binary: true }, () => {
      inFlight -= chunk.length;
      if (paused && inFlight < LOW_WATER) {
        paused = false;
        p.resume();
      }
    });
    if (!paused && inFlight > HIGH_WATER) {
      paused = true;
      p.pause();
    }
  });
  p.onExit(() => ws.close(1000));
  ws.send(JSON.stringify({ type: 'attached', terminal: 'floor', replay: false, expiresAt: '' }));
  ws.on('message', (data: Buffer, binary: boolean) => {
    if (binary) {
      p.write(data);
      return;
    }
    try {
      const m = JSON.parse(data.toString());
      if (m.type === 'resize') p.resize(m.cols, m.rows);
    } catch {}
  });
  ws.on('close', () => p.kill());
  ws.on('error', () => {});
});

server.listen(0, '127.0.0.1', () => {
  const addr = server.address();
  process.stdout.write(`${JSON.stringify({ port: typeof addr === 'object' && addr ? addr.port : 0 })}\n`);
});

const stop = () => {
  for (const c of wss.clients) c.terminate();
  server.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 1000).unref();
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
