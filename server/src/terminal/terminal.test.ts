/**
 * Unit tests of Terminal's resizes (a fake shell process counting engine calls, fake time):
 * only the latest size reaches the engine, unchanged sizes are skipped, at most one call
 * per RESIZE_INTERVAL_MS and never two at once.
 *   node --test server/src/terminal/terminal.test.ts
 */
import assert from 'node:assert/strict';
import { Duplex } from 'node:stream';
import { test } from 'node:test';
import { FakeScheduler } from '../../../tests/unit-support/fake-scheduler.ts';
import type { TerminalProcess } from '../runtime/runtime.ts';
import { RESIZE_INTERVAL_MS } from './protocol.ts';
import { Terminal } from './terminal.ts';

/** Lets settled promises run their callbacks. */
const flush = () => new Promise<void>((r) => setImmediate(r));

/** A shell whose every resize is one "engine call" that settles when the test says so. */
class CountingShell implements TerminalProcess {
  readonly stream = new Duplex({ read() {}, write: (_c, _e, cb) => cb() });
  readonly calls: { cols: number; rows: number }[] = [];
  inFlight = 0;
  maxInFlight = 0;
  /** When false, resizes stay pending until settle() is called. */
  instant = true;
  fail = false;
  readonly #pending: (() => void)[] = [];
  readonly exited: Promise<number | null>;
  #exit!: (code: number | null) => void;

  constructor() {
    this.exited = new Promise((r) => {
      this.#exit = r;
    });
  }

  resize(cols: number, rows: number): Promise<void> {
    this.calls.push({ cols, rows });
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    return new Promise<void>((resolve, reject) => {
      const done = () => {
        this.inFlight--;
        if (this.fail) reject(new Error('engine said no'));
        else resolve();
      };
      if (this.instant) queueMicrotask(done);
      else this.#pending.push(done);
    });
  }

  /** Settles every pending resize. */
  settle(): void {
    for (const done of this.#pending.splice(0)) done();
  }

  exit(code: number | null): void {
    this.stream.push(null);
    this.#exit(code);
  }

  close(): void {
    this.exit(129);
  }
}

function setup(opts: { size?: { cols: number; rows: number } } = {}) {
  const shell = new CountingShell();
  const clock = new FakeScheduler();
  const term = new Terminal(
    { name: 'host', title: 'Host', target: 'host' },
    shell,
    { onExit: () => {}, onActivity: () => {}, expiresAt: () => new Date(0) },
    { scheduler: clock, size: opts.size ?? { cols: 80, rows: 24 } },
  );
  return { shell, clock, term };
}

test('a burst of resizes at one instant: one engine call now, then one with the latest size', async () => {
  const { shell, clock, term } = setup();
  for (let i = 0; i < 1000; i++) term.resize(100 + (i % 50), 30 + (i % 7));
  term.resize(123, 45);
  await flush();
  assert.deepEqual(shell.calls, [{ cols: 100, rows: 30 }], 'only the first size goes out at once');
  clock.advance(RESIZE_INTERVAL_MS);
  await flush();
  assert.deepEqual(shell.calls.at(-1), { cols: 123, rows: 45 }, 'the latest size wins');
  assert.equal(shell.calls.length, 2);
  clock.advance(10 * RESIZE_INTERVAL_MS);
  await flush();
  assert.equal(shell.calls.length, 2, 'nothing more once the TTY has the latest size');
});

test('unchanged sizes are skipped: the opening size, and a size already applied', async () => {
  const { shell, clock, term } = setup({ size: { cols: 80, rows: 24 } });
  term.resize(80, 24);
  await flush();
  assert.equal(shell.calls.length, 0, 'the shell was opened at this size');
  term.resize(100, 30);
  // A -> B -> A while the call for A is in flight: the TTY is at A, so nothing more is sent.
  term.resize(90, 20);
  term.resize(100, 30);
  await flush();
  clock.advance(RESIZE_INTERVAL_MS);
  await flush();
  term.resize(100, 30);
  clock.advance(RESIZE_INTERVAL_MS);
  await flush();
  assert.deepEqual(shell.calls, [{ cols: 100, rows: 30 }]);
});

test('a steady stream of new sizes: at most one engine call per interval, the last size at the end', async () => {
  const { shell, clock, term } = setup();
  // A new size every millisecond for 10 seconds.
  for (let ms = 0; ms < 10_000; ms++) {
    term.resize(20 + (ms % 200), 5 + (ms % 40));
    clock.advance(1);
    if (ms % 10 === 0) await flush();
  }
  term.resize(133, 41);
  for (let i = 0; i < 5; i++) {
    clock.advance(RESIZE_INTERVAL_MS);
    await flush();
  }
  const perSecond = 1000 / RESIZE_INTERVAL_MS;
  assert.ok(shell.calls.length <= 10 * perSecond + 2, `${shell.calls.length} calls in 10 s`);
  assert.ok(shell.calls.length >= 10 * perSecond - 2, `only ${shell.calls.length} calls in 10 s`);
  assert.deepEqual(shell.calls.at(-1), { cols: 133, rows: 41 });
});

test('never two engine calls at once: the latest size waits for the slow one in flight', async () => {
  const { shell, clock, term } = setup();
  shell.instant = false;
  term.resize(100, 30);
  for (let ms = 0; ms < 3000; ms += 50) {
    clock.advance(50);
    term.resize(101 + (ms % 17), 31);
    await flush();
  }
  assert.equal(shell.calls.length, 1, 'the first call has not answered yet');
  term.resize(140, 50);
  shell.settle();
  await flush();
  assert.deepEqual(shell.calls.at(-1), { cols: 140, rows: 50 }, 'the latest size goes out when it answers');
  assert.equal(shell.calls.length, 2);
  shell.settle();
  await flush();
  clock.advance(RESIZE_INTERVAL_MS);
  await flush();
  assert.equal(shell.maxInFlight, 1);
  assert.equal(shell.calls.length, 2);
});

test('a failed resize does not stop the next; an exited shell gets no resize and no timer', async () => {
  const { shell, clock, term } = setup();
  shell.fail = true;
  term.resize(100, 30);
  await flush();
  shell.fail = false;
  clock.advance(RESIZE_INTERVAL_MS);
  await flush();
  assert.equal(shell.calls.length, 1, 'not retried by itself');
  // Asked again, the size that failed goes out again: the TTY's size was unknown.
  term.resize(100, 30);
  await flush();
  clock.advance(RESIZE_INTERVAL_MS);
  term.resize(110, 35);
  clock.advance(RESIZE_INTERVAL_MS);
  await flush();
  assert.deepEqual(shell.calls, [
    { cols: 100, rows: 30 },
    { cols: 100, rows: 30 },
    { cols: 110, rows: 35 },
  ]);
  clock.advance(RESIZE_INTERVAL_MS);
  term.resize(115, 36);
  await flush();
  term.resize(120, 40); // waits for the interval...
  assert.equal(clock.pending, 1);
  shell.exit(0); // ...and is never sent.
  await flush();
  term.resize(130, 45);
  clock.advance(10 * RESIZE_INTERVAL_MS);
  await flush();
  assert.equal(shell.calls.length, 4, 'no resize after the shell exited');
  assert.deepEqual(shell.calls.at(-1), { cols: 115, rows: 36 });
  assert.equal(clock.pending, 0, 'no timer left behind');
});

function recordingSink() {
  const seen = { msgs: [] as unknown[], closed: null as number | null };
  return {
    seen,
    sink: {
      output() {},
      control(m: unknown) {
        seen.msgs.push(m);
      },
      close(code: number) {
        seen.closed = code;
      },
    },
  };
}

test('the shell exits: `exit` with its code, then 4010 (a reconnect starts a new shell)', async () => {
  const { shell, term } = setup();
  const { seen, sink } = recordingSink();
  term.attach(sink);
  shell.exit(0);
  await flush();
  assert.deepEqual(seen.msgs.at(-1), { type: 'exit', code: 0 });
  assert.equal(seen.closed, 4010);
  assert.ok(term.exited);
});

test('the stream ends with no exit code (the engine lost it): 1011, no `exit`, so the page reconnects', async () => {
  const { shell, term } = setup();
  const { seen, sink } = recordingSink();
  term.attach(sink);
  shell.exit(null);
  await flush();
  assert.ok(!seen.msgs.some((m) => (m as { type: string }).type === 'exit'), 'no exit message');
  assert.equal(seen.closed, 1011);
  assert.ok(term.exited, 'this terminal is done: the next attach opens a new exec (which finds the shell)');
});
