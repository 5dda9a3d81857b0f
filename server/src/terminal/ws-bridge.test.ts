/**
 * Unit tests of the WebSocket ↔ terminal bridge, with a fake socket, a fake shell and fake
 * time: what a socket's control messages may cost (malformed limit, control budget,
 * replies held back while the send buffer is full), the heartbeat, and output flow control.
 *   node --test server/src/terminal/ws-bridge.test.ts
 */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { test } from 'node:test';
import type { WebSocket } from 'ws';
import { FakeTerminal } from '../../../tests/unit-support/fake-runtime.ts';
import { FakeScheduler } from '../../../tests/unit-support/fake-scheduler.ts';
// The socket limits under test, read from the protocol (never restated here).
import * as protocol from './protocol.ts';
import { Terminal } from './terminal.ts';
import { bridge } from './ws-bridge.ts';

const HEARTBEAT_MS = 25_000;
const flush = () => new Promise<void>((r) => setImmediate(r));

/** The server's end of a WebSocket, as ws-bridge.ts uses it. */
class FakeSocket extends EventEmitter {
  readonly CONNECTING = 0;
  readonly OPEN = 1;
  readonly CLOSING = 2;
  readonly CLOSED = 3;
  readyState = 1;
  /** What the socket holds unsent; the test sets it to play a peer that does not read. */
  bufferedAmount = 0;
  readonly sent: { data: Buffer | string; binary: boolean }[] = [];
  readonly pings: Buffer[] = [];
  readonly pongs: Buffer[] = [];
  closed: { code: number; reason: string } | null = null;
  terminated = false;
  paused = false;
  readonly #callbacks: (() => void)[] = [];

  send(data: Buffer | string, opts: { binary: boolean }, cb?: () => void): void {
    this.sent.push({ data, binary: opts.binary });
    if (cb) this.#callbacks.push(cb);
  }
  ping(data: Buffer): void {
    this.pings.push(Buffer.from(data));
  }
  pong(data: Buffer): void {
    this.pongs.push(Buffer.from(data));
  }
  close(code: number, reason: string): void {
    this.closed = { code, reason };
    this.readyState = this.CLOSING;
  }
  terminate(): void {
    this.terminated = true;
    this.readyState = this.CLOSED;
    this.emit('close', 1006, Buffer.alloc(0));
  }
  pause(): void {
    this.paused = true;
  }
  resume(): void {
    this.paused = false;
  }

  // The peer's side:
  text(s: string): void {
    this.emit('message', Buffer.from(s), false);
  }
  /** Sends written so far are on the wire (ws calls the send callbacks). */
  written(): void {
    for (const cb of this.#callbacks.splice(0)) cb();
  }
  controls(type?: string): Record<string, unknown>[] {
    return this.sent
      .filter((m) => !m.binary)
      .map((m) => JSON.parse(String(m.data)) as Record<string, unknown>)
      .filter((m) => type === undefined || m.type === type);
  }
  outputBytes(): number {
    return this.sent.filter((m) => m.binary).reduce((n, m) => n + (m.data as Buffer).length, 0);
  }
}

function setup() {
  const clock = new FakeScheduler();
  const shell = new FakeTerminal('host-1', 'host', { cols: 80, rows: 24 });
  const term = new Terminal(
    { name: 'host', title: 'Host', target: 'host' },
    shell,
    { onExit: () => {}, onActivity: () => {}, expiresAt: () => new Date(0) },
    { scheduler: clock, size: { cols: 80, rows: 24 } },
  );
  const ws = new FakeSocket();
  const warnings: { fields: Record<string, unknown>; msg: string }[] = [];
  const log = { warn: (fields: Record<string, unknown>, msg: string) => warnings.push({ fields, msg }) };
  bridge(ws as unknown as WebSocket, term, log, { scheduler: clock });
  const before = ws.controls().length;
  return {
    clock,
    shell,
    term,
    ws,
    warnings,
    newControls: (type?: string) => ws.controls(type).slice(before),
  };
}

test('malformed messages: answered up to the limit, then the socket is closed with 1008', () => {
  const { ws, warnings, clock } = setup();
  for (let i = 1; i < protocol.MAX_MALFORMED; i++) ws.text(`{not json ${i}`);
  assert.equal(ws.controls('error').length, protocol.MAX_MALFORMED - 1, 'each one answered');
  assert.equal(ws.closed, null);
  ws.text('{"type":"exec"}');
  assert.deepEqual(ws.closed, {
    code: protocol.CloseCode.policy,
    reason: 'too many malformed control messages',
  });
  assert.ok(
    warnings.some((w) => w.msg === 'closed a terminal socket' && w.fields.code === 1008),
    JSON.stringify(warnings.at(-1)),
  );
  // Nothing more is read or answered while it closes; a peer that never answers is cut.
  ws.text('{more');
  ws.text('{"type":"ping"}');
  assert.equal(ws.controls('error').length, protocol.MAX_MALFORMED - 1);
  assert.equal(ws.controls('pong').length, 0);
  assert.equal(ws.terminated, false);
  clock.advance(protocol.POLICY_CLOSE_GRACE_MS);
  assert.equal(ws.terminated, true);
});

test('valid messages between malformed ones do not reset the malformed count', () => {
  const { ws } = setup();
  for (let i = 0; i < protocol.MAX_MALFORMED; i++) {
    ws.text('[]');
    ws.text(JSON.stringify({ type: 'resize', cols: 80 + i, rows: 24 }));
  }
  assert.equal(ws.closed?.code, protocol.CloseCode.policy);
});

test('control budget: a burst is answered, beyond it pings are ignored, a persistent flood closes', () => {
  const { ws, clock } = setup();
  for (let i = 0; i < protocol.CONTROL_BURST; i++) ws.text(JSON.stringify({ type: 'ping', t: i }));
  assert.equal(ws.controls('pong').length, protocol.CONTROL_BURST, 'the burst is answered');
  for (let i = 0; i < protocol.CONTROL_FLOOD_LIMIT; i++) ws.text('{"type":"ping"}');
  assert.equal(ws.controls('pong').length, protocol.CONTROL_BURST, 'over the budget: ignored');
  assert.equal(ws.closed, null, 'not closed yet');
  // The ignored ones were debt: once the refill has paid it, a ping is answered again.
  clock.advance(((protocol.CONTROL_FLOOD_LIMIT + 1) * 1000) / protocol.CONTROL_RATE);
  ws.text('{"type":"ping","t":-1}');
  assert.equal(ws.controls('pong').length, protocol.CONTROL_BURST + 1);
  for (let i = 0; i <= protocol.CONTROL_FLOOD_LIMIT + protocol.CONTROL_RATE; i++) ws.text('{"type":"ping"}');
  assert.deepEqual(ws.closed, { code: protocol.CloseCode.policy, reason: 'too many control messages' });
});

test('pings at the sustained rate are all answered, for a long time', () => {
  const { ws, clock } = setup();
  const every = 1000 / protocol.CONTROL_RATE;
  for (let i = 0; i < protocol.CONTROL_RATE * 600; i++) {
    ws.text(JSON.stringify({ type: 'ping', t: i }));
    clock.advance(every);
    // The heartbeat asks; the peer answers.
    const ours = ws.pings.at(-1);
    if (ours) ws.emit('pong', ours);
  }
  assert.equal(ws.controls('pong').length, protocol.CONTROL_RATE * 600);
  assert.equal(ws.closed, null);
  assert.equal(ws.terminated, false);
});

test('WebSocket-level pings draw on the same budget: a flood of them closes with 1008', () => {
  const { ws } = setup();
  for (let i = 0; i < protocol.CONTROL_BURST / 2; i++) {
    ws.emit('ping', Buffer.from('x'));
    ws.text('{"type":"ping"}');
  }
  assert.equal(ws.controls('pong').length, protocol.CONTROL_BURST / 2);
  assert.equal(ws.closed, null, 'a burst is fine');
  for (let i = 0; i <= protocol.CONTROL_FLOOD_LIMIT; i++) ws.emit('ping', Buffer.from('x'));
  assert.deepEqual(ws.closed, { code: protocol.CloseCode.policy, reason: 'too many control messages' });
  // (ws itself answers them, and cuts a socket with 60 answers unsent.)
  assert.equal(ws.pongs.length, 0, 'the bridge sends no WebSocket-level pong of its own');
});

test('no reply is queued while the send buffer is over the limit; a socket that stays full is dropped', () => {
  const { ws, clock, warnings } = setup();
  ws.bufferedAmount = protocol.REPLY_BUFFER_LIMIT + 1;
  ws.text('{"type":"ping","t":1}');
  ws.text('{oops');
  ws.emit('ping', Buffer.from('p'));
  assert.equal(ws.controls('pong').length, 0);
  assert.equal(ws.controls('error').length, 0);
  assert.equal(ws.pongs.length, 0);
  clock.advance(protocol.REPLY_STALL_MS - 1);
  assert.equal(ws.terminated, false);
  clock.advance(1);
  assert.equal(ws.terminated, true, 'still full after protocol.REPLY_STALL_MS');
  assert.ok(warnings.some((w) => w.msg === 'dropped a terminal socket' && w.fields.reason === 'not reading'));
});

test('a socket whose buffer drains is kept, and answered again', () => {
  const { ws, clock } = setup();
  ws.bufferedAmount = protocol.REPLY_BUFFER_LIMIT + 1;
  ws.text('{"type":"ping","t":1}');
  clock.advance(protocol.REPLY_STALL_MS / 2);
  ws.bufferedAmount = 0;
  clock.advance(protocol.REPLY_STALL_MS);
  assert.equal(ws.terminated, false);
  ws.text('{"type":"ping","t":2}');
  assert.deepEqual(
    ws.controls('pong').map((p) => p.t),
    [2],
  );
  // A later stall is timed from when it starts.
  ws.bufferedAmount = protocol.REPLY_BUFFER_LIMIT + 1;
  ws.text('{"type":"ping","t":3}');
  clock.advance(protocol.REPLY_STALL_MS - 1);
  assert.equal(ws.terminated, false);
  clock.advance(1);
  assert.equal(ws.terminated, true);
});

test('the terminal’s own messages are held back too while the buffer is full, but never attached/exit', async () => {
  const { ws, term, shell, newControls } = setup();
  ws.bufferedAmount = protocol.REPLY_BUFFER_LIMIT + 1;
  term.broadcast({ type: 'expiring', expiresAt: new Date(0).toISOString() });
  term.broadcast({ type: 'notice', message: 'hello' });
  assert.deepEqual(newControls(), []);
  shell.kill(0);
  await flush();
  assert.deepEqual(
    newControls().map((m) => m.type),
    ['exit'],
  );
});

test('heartbeat: only a pong carrying our ping’s payload keeps the socket', () => {
  const { ws, clock } = setup();
  clock.advance(HEARTBEAT_MS);
  assert.equal(ws.pings.length, 1);
  const first = ws.pings[0]!;
  assert.ok(first.length >= 8, 'a random payload');
  ws.emit('pong', first);
  clock.advance(HEARTBEAT_MS);
  assert.equal(ws.terminated, false, 'the answer to our ping counts');
  assert.equal(ws.pings.length, 2);
  assert.notDeepEqual(ws.pings[1], first, 'a new payload each time');
  // Unsolicited pongs (empty, or an old payload) do not keep a dead peer alive.
  ws.emit('pong', Buffer.alloc(0));
  ws.emit('pong', first);
  clock.advance(HEARTBEAT_MS);
  assert.equal(ws.terminated, true);
});

test('resize, pause and resume are never budgeted: after a flood the last size applies, output flows', async () => {
  const { ws, clock, shell } = setup();
  for (let i = 0; i < 5000; i++) {
    ws.text(JSON.stringify({ type: 'resize', cols: 20 + (i % 100), rows: 5 + (i % 30) }));
    ws.text('{"type":"pause"}');
    ws.text('{"type":"resume"}');
  }
  ws.text(JSON.stringify({ type: 'resize', cols: 133, rows: 41 }));
  await flush();
  clock.advance(protocol.RESIZE_INTERVAL_MS);
  await flush();
  assert.deepEqual(shell.size, { cols: 133, rows: 41 });
  assert.equal(ws.closed, null);
  shell.stream.push(Buffer.from('still here'));
  await flush();
  assert.ok(ws.outputBytes() >= 10, 'output is not paused');
});

test('output flow control: the shell pauses above protocol.HIGH_WATER in flight and resumes below protocol.LOW_WATER', async () => {
  const { ws, shell } = setup();
  const chunk = Buffer.alloc(64 * 1024, 0x61);
  for (let i = 0; i * chunk.length <= protocol.HIGH_WATER; i++) shell.stream.push(chunk);
  await flush();
  assert.ok(ws.outputBytes() > protocol.HIGH_WATER);
  assert.equal(shell.stream.isPaused(), true, 'paused while the socket is behind');
  const sent = ws.outputBytes();
  shell.stream.push(chunk);
  await flush();
  assert.equal(ws.outputBytes(), sent, 'nothing more is read from the shell meanwhile');
  ws.written();
  await flush();
  assert.equal(
    shell.stream.isPaused(),
    false,
    `resumed once under ${protocol.LOW_WATER} bytes are in flight`,
  );
  // Client-side flow control still works on top.
  ws.text('{"type":"pause"}');
  assert.equal(shell.stream.isPaused(), true);
  ws.text('{"type":"resume"}');
  assert.equal(shell.stream.isPaused(), false);
});

test('closing the socket detaches the terminal and leaves no timer behind', () => {
  const { ws, term, clock } = setup();
  ws.text('{"type":"ping"}');
  ws.bufferedAmount = protocol.REPLY_BUFFER_LIMIT + 1;
  ws.text('{"type":"ping"}');
  assert.equal(term.attached, true);
  ws.readyState = ws.CLOSED;
  ws.emit('close', 1000, Buffer.alloc(0));
  assert.equal(term.attached, false);
  assert.equal(clock.pending, 0);
});
