/**
 * Unit tests of the browser's terminal protocol client, with a fake WebSocket:
 * attach/replay, input queueing, flow control water marks, reconnect and close codes.
 *   node --test src/lib/terminal-client.test.ts
 */
import assert from 'node:assert/strict';
import { beforeEach, test } from 'node:test';
import { CloseCode, HIGH_WATER, LOW_WATER, MAX_FRAME_BYTES } from '../../server/src/terminal/protocol.ts';
import {
  type EndReason,
  TerminalClient,
  type TerminalStatus,
  TerminalUrlRefused,
} from './terminal-client.ts';

class FakeSocket {
  static readonly CONNECTING = 0;
  static readonly OPEN = 1;
  static readonly CLOSING = 2;
  static readonly CLOSED = 3;
  static all: FakeSocket[] = [];
  readonly url: string;
  readyState = FakeSocket.CONNECTING;
  binaryType = 'blob';
  sent: (string | Uint8Array)[] = [];
  onopen: (() => void) | null = null;
  onmessage: ((ev: { data: unknown }) => void) | null = null;
  onclose: ((ev: { code: number }) => void) | null = null;
  onerror: (() => void) | null = null;
  constructor(url: string) {
    this.url = url;
    FakeSocket.all.push(this);
  }
  send(data: string | Uint8Array): void {
    this.sent.push(data);
  }
  close(code = 1000): void {
    if (this.readyState === FakeSocket.CLOSED) return;
    this.readyState = FakeSocket.CLOSED;
    queueMicrotask(() => this.onclose?.({ code }));
  }
  // The server's side:
  open(): void {
    this.readyState = FakeSocket.OPEN;
    this.onopen?.();
  }
  text(msg: object): void {
    this.onmessage?.({ data: JSON.stringify(msg) });
  }
  bytes(n: number): void {
    this.onmessage?.({ data: new Uint8Array(n).buffer });
  }
  drop(code: number): void {
    this.readyState = FakeSocket.CLOSED;
    this.onclose?.({ code });
  }
  controls(): string[] {
    return this.sent
      .filter((s): s is string => typeof s === 'string')
      .map((s) => (JSON.parse(s) as { type: string }).type);
  }
}

const last = () => {
  const s = FakeSocket.all.at(-1);
  assert.ok(s, 'no socket was opened');
  return s;
};
const tick = (ms = 0) => new Promise((r) => setTimeout(r, ms));
const attached = { type: 'attached', terminal: 't', replay: false, expiresAt: '2030-01-01T00:00:00Z' };

interface Harness {
  client: TerminalClient;
  writes: number[];
  pending: (() => void)[];
  resets: number;
  statuses: TerminalStatus[];
  /** `restarting` with each status. */
  restarting: boolean[];
  ends: EndReason[];
  /** The server's words with each end. */
  messages: (string | undefined)[];
}

function harness(
  opts: { autoDone?: boolean; maxAttempts?: number; url?: string | (() => Promise<string>) } = {},
): Harness {
  const h: Harness = {
    client: undefined as unknown as TerminalClient,
    writes: [],
    pending: [],
    resets: 0,
    statuses: [],
    restarting: [],
    ends: [],
    messages: [],
  };
  h.client = new TerminalClient({
    url: opts.url ?? 'ws://x/t?ticket=k',
    size: () => ({ cols: 80, rows: 24 }),
    sink: {
      write: (data, done) => {
        h.writes.push(data.byteLength);
        if (opts.autoDone ?? true) done();
        else h.pending.push(done);
      },
      reset: () => h.resets++,
    },
    onStatus: (s, _a, info) => {
      h.statuses.push(s);
      h.restarting.push(info.restarting);
    },
    onEnd: (r, _c, message) => {
      h.ends.push(r);
      h.messages.push(message);
    },
    WebSocket: FakeSocket as unknown as typeof WebSocket,
    backoff: { initialMs: 1, maxMs: 4, maxAttempts: opts.maxAttempts ?? 5 },
    pingMs: 0,
  });
  return h;
}

beforeEach(() => {
  FakeSocket.all = [];
});

test('sends its size on open, queues input until attached, then flushes it', () => {
  const h = harness();
  h.client.connect();
  assert.equal(last().binaryType, 'arraybuffer');
  h.client.send('ls\r');
  last().open();
  assert.deepEqual(last().controls(), ['resize']);
  assert.deepEqual(JSON.parse(last().sent[0] as string), { type: 'resize', cols: 80, rows: 24 });
  assert.equal(last().sent.length, 1, 'input waits for "attached"');
  last().text(attached);
  assert.deepEqual(h.statuses, ['connecting', 'attached']);
  assert.deepEqual([...(last().sent[1] as Uint8Array)], [...new TextEncoder().encode('ls\r')]);
  h.client.send('x');
  assert.equal(last().sent.length, 3, 'input flows directly once attached');
});

test('a replaying attach resets the screen before the replayed bytes', () => {
  const h = harness();
  h.client.connect();
  last().open();
  last().text({ ...attached, replay: true });
  last().bytes(10);
  last().text({ type: 'replayed' });
  assert.equal(h.resets, 1);
  assert.deepEqual(h.writes, [10]);
});

test('flow control: pause above HIGH_WATER, resume below LOW_WATER', () => {
  const h = harness({ autoDone: false });
  h.client.connect();
  last().open();
  last().text(attached);
  const frame = 60 * 1024;
  let sent = 0;
  while (sent <= HIGH_WATER) {
    last().bytes(frame);
    sent += frame;
  }
  assert.deepEqual(last().controls(), ['resize', 'pause']);
  assert.ok(h.client.paused);
  last().bytes(frame); // more data while paused: still only one pause
  assert.equal(
    last()
      .controls()
      .filter((c) => c === 'pause').length,
    1,
  );
  // xterm catches up: resume once below LOW_WATER.
  while (h.client.pendingBytes >= LOW_WATER) h.pending.shift()?.();
  assert.deepEqual(last().controls(), ['resize', 'pause', 'resume']);
  assert.ok(!h.client.paused);
});

test('big pastes go out in frames of at most MAX_FRAME_BYTES', () => {
  const h = harness();
  h.client.connect();
  last().open();
  last().text(attached);
  h.client.send('a'.repeat(MAX_FRAME_BYTES * 2 + 5));
  const frames = last().sent.filter((s) => typeof s !== 'string') as Uint8Array[];
  assert.deepEqual(
    frames.map((f) => f.byteLength),
    [MAX_FRAME_BYTES, MAX_FRAME_BYTES, 5],
  );
});

test('an unexpected close reconnects with backoff; the new socket gets the size again', async () => {
  const h = harness();
  h.client.connect();
  last().open();
  last().text(attached);
  const first = last();
  first.drop(1006);
  assert.equal(h.client.status, 'reconnecting');
  await tick(20);
  assert.notEqual(last(), first, 'a new socket was opened');
  last().open();
  last().text({ ...attached, replay: true });
  assert.equal(h.client.status, 'attached');
  assert.deepEqual(last().controls(), ['resize']);
  assert.deepEqual(h.ends, []);
});

test('final close codes end the terminal without reconnecting', async () => {
  const cases: [number, EndReason][] = [
    [CloseCode.sessionEnded, 'session-ended'],
    [CloseCode.badToken, 'bad-token'],
    [CloseCode.notFound, 'not-found'],
    [CloseCode.shellExited, 'shell-exited'],
    [CloseCode.replaced, 'replaced'],
    [CloseCode.serverShutdown, 'server-shutdown'],
    [CloseCode.policy, 'policy'],
  ];
  for (const [code, reason] of cases) {
    FakeSocket.all = [];
    const h = harness();
    h.client.connect();
    last().open();
    last().text(attached);
    last().drop(code);
    await tick(20);
    assert.equal(FakeSocket.all.length, 1, `no reconnect after ${code}`);
    assert.deepEqual(h.ends, [reason]);
    assert.equal(h.client.status, 'ended');
  }
});

test('after shell-exited, connect() opens a fresh socket', () => {
  const h = harness();
  h.client.connect();
  last().open();
  last().drop(CloseCode.shellExited);
  h.client.connect();
  assert.equal(FakeSocket.all.length, 2);
  assert.equal(h.client.status, 'connecting');
});

test('4013 (server restarting) is not an end: it keeps reconnecting past maxAttempts until the server answers', async () => {
  const h = harness({ maxAttempts: 2 });
  h.client.connect();
  last().open();
  last().text(attached);
  last().drop(CloseCode.serverRestarting);
  assert.equal(h.client.status, 'reconnecting');
  assert.equal(h.restarting.at(-1), true, 'the status says the server is restarting');
  // The server is down a while: many more failed attempts than maxAttempts.
  for (let i = 0; i < 6; i++) {
    await tick(20);
    last().drop(1006);
  }
  assert.deepEqual(h.ends, [], 'it did not give up');
  await tick(20);
  last().open();
  last().text({ ...attached, replay: false });
  assert.equal(h.client.status, 'attached');
  assert.equal(h.restarting.at(-1), false, 'back: no longer restarting');
  // An ordinary drop afterwards has the ordinary budget again.
  last().drop(1006);
  for (let i = 0; i < 3; i++) {
    await tick(20);
    last().drop(1006);
  }
  await tick(20);
  assert.deepEqual(h.ends, ['gave-up']);
});

test('a restart outlasting its budget gives up like any reconnect', async () => {
  FakeSocket.all = [];
  const ends: EndReason[] = [];
  const client = new TerminalClient({
    url: 'ws://x/t?ticket=k',
    size: () => ({ cols: 80, rows: 24 }),
    sink: { write: (_d, done) => done(), reset: () => {} },
    onEnd: (r) => ends.push(r),
    WebSocket: FakeSocket as unknown as typeof WebSocket,
    backoff: { initialMs: 1, maxMs: 4, maxAttempts: 1 },
    restartBudgetMs: 30,
    pingMs: 0,
  });
  client.connect();
  last().open();
  last().text(attached);
  last().drop(CloseCode.serverRestarting);
  for (let i = 0; i < 20 && ends.length === 0; i++) {
    await tick(10);
    last().drop(1006);
  }
  assert.deepEqual(ends, ['gave-up']);
});

test("a final close passes on the server's last error message", async () => {
  const h = harness();
  h.client.connect();
  last().open();
  last().text(attached);
  last().text({ type: 'error', code: 'host_gone', message: 'The lab machine restarted.' });
  last().drop(CloseCode.sessionEnded);
  await tick(5);
  assert.deepEqual(h.ends, ['session-ended']);
  assert.deepEqual(h.messages, ['The lab machine restarted.']);
});

test('gives up after maxAttempts failed reconnects', async () => {
  const h = harness({ maxAttempts: 3 });
  h.client.connect();
  last().drop(1006); // never opened
  for (let i = 0; i < 3; i++) {
    await tick(20);
    last().drop(1006);
  }
  await tick(5);
  assert.deepEqual(h.ends, ['gave-up']);
  assert.equal(FakeSocket.all.length, 4);
});

test('close() ends quietly and drops queued input', async () => {
  const h = harness();
  h.client.connect();
  h.client.send('lost');
  h.client.close();
  await tick(5);
  assert.equal(h.client.status, 'ended');
  assert.deepEqual(h.ends, ['closed']);
  assert.equal(last().sent.length, 0);
});

test('a URL provider is asked before every open: each socket gets a fresh ticket', async () => {
  let n = 0;
  const h = harness({ url: async () => `ws://x/t?ticket=${++n}` });
  h.client.connect();
  await tick();
  assert.equal(last().url, 'ws://x/t?ticket=1');
  last().open();
  last().text(attached);
  last().drop(1006);
  await tick(20);
  assert.equal(last().url, 'ws://x/t?ticket=2', 'the reconnect asked for a new URL');
  // A refused ticket (4001) is not final with a provider: a new one is fetched.
  last().drop(CloseCode.badToken);
  await tick(20);
  assert.equal(last().url, 'ws://x/t?ticket=3');
  assert.deepEqual(h.ends, []);
  h.client.close();
});

test('a provider that refuses ends the client; one that fails is retried', async () => {
  const refused = harness({
    url: async () => {
      throw new TerminalUrlRefused('session-ended', 'gone');
    },
  });
  refused.client.connect();
  await tick(5);
  assert.equal(FakeSocket.all.length, 0, 'no socket without a URL');
  assert.deepEqual(refused.ends, ['session-ended']);
  assert.equal(refused.client.status, 'ended');

  let calls = 0;
  const flaky = harness({
    url: async () => {
      if (++calls < 3) throw new Error('network');
      return 'ws://x/t?ticket=ok';
    },
  });
  flaky.client.connect();
  await tick(50);
  assert.equal(calls, 3);
  assert.equal(FakeSocket.all.length, 1);
  assert.equal(last().url, 'ws://x/t?ticket=ok');
  assert.ok(flaky.statuses.includes('reconnecting'));
  flaky.client.close();
});

test('close() while the provider is still answering opens no socket', async () => {
  let answer: (u: string) => void = () => {};
  const h = harness({ url: () => new Promise<string>((r) => (answer = r)) });
  h.client.connect();
  h.client.close();
  answer('ws://x/t?ticket=late');
  await tick(5);
  assert.equal(FakeSocket.all.length, 0);
  assert.equal(h.client.status, 'ended');
});

test('with a fixed URL a refused ticket (4001) is final', async () => {
  const h = harness();
  h.client.connect();
  last().open();
  last().drop(CloseCode.badToken);
  await tick(20);
  assert.equal(FakeSocket.all.length, 1);
  assert.deepEqual(h.ends, ['bad-token']);
});
