/**
 * Unit tests of the asciicast v2 parser and player.
 *   node --test src/lib/cast-player.test.ts
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  type Cast,
  CastFormatError,
  CastPlayer,
  type PlayerClock,
  type PlayerState,
  parseCast,
} from './cast-player.ts';

const cast = (events: [number, string, string][], header: object = {}) =>
  [
    JSON.stringify({ version: 2, width: 80, height: 24, ...header }),
    ...events.map((e) => JSON.stringify(e)),
  ].join('\n');

test('parses a v2 cast, keeping output events only', () => {
  const c = parseCast(
    cast([
      [0.1, 'o', 'a'],
      [0.2, 'i', 'typed'],
      [0.3, 'm', 'marker'],
      [0.4, 'o', 'b'],
    ]),
  );
  assert.equal(c.header.width, 80);
  assert.deepEqual(c.events, [
    { t: 0.1, data: 'a' },
    { t: 0.4, data: 'b' },
  ]);
});

test('refuses what is not an asciicast v2 file', () => {
  assert.throws(() => parseCast(''), CastFormatError);
  assert.throws(() => parseCast('not json'), CastFormatError);
  assert.throws(() => parseCast(JSON.stringify({ version: 1, width: 80, height: 24 })), CastFormatError);
  assert.throws(
    () => parseCast(`${JSON.stringify({ version: 2, width: 80, height: 24 })}\n[1, "o"]`),
    /line 2/,
  );
});

function play(casts: Cast[], opts: { idleTimeLimit?: number; clock?: PlayerClock } = {}) {
  const out: string[] = [];
  const states: PlayerState[] = [];
  let resets = 0;
  const player = new CastPlayer(
    casts.map((c, i) => ({ cast: c, write: (d: string) => out.push(`${i}:${d}`), reset: () => resets++ })),
    { speed: 20, onState: (s) => states.push(s), ...opts },
  );
  const ended = () =>
    new Promise<void>((resolve) => {
      const check = setInterval(() => {
        if (player.state === 'ended') {
          clearInterval(check);
          resolve();
        }
      }, 2);
    });
  return { player, out, states, ended, resets: () => resets };
}

test('plays several casts on one clock, in time order', async () => {
  const a = parseCast(
    cast([
      [0.1, 'o', 'a1'],
      [0.5, 'o', 'a2'],
    ]),
  );
  const b = parseCast(cast([[0.3, 'o', 'b1']]));
  const p = play([a, b]);
  p.player.play();
  await p.ended();
  assert.deepEqual(p.out, ['0:a1', '1:b1', '0:a2']);
  assert.deepEqual(p.states, ['playing', 'ended']);
  assert.equal(p.resets(), 2, 'each terminal is reset before playing');
});

test('long pauses are shortened to the idle time limit', () => {
  const a = parseCast(
    cast([
      [1, 'o', 'x'],
      [61, 'o', 'y'],
    ]),
  );
  const p = play([a], { idleTimeLimit: 2 });
  assert.equal(p.player.duration, 3);
});

/** A clock the test moves: timers fire when `advance` passes their time, in order. */
class HandClock implements PlayerClock {
  t = 0;
  #timers: { at: number; fn: () => void; id: number }[] = [];
  #next = 1;
  now = () => this.t;
  setTimeout = (fn: () => void, ms: number) => {
    const id = this.#next++;
    this.#timers.push({ at: this.t + ms, fn, id });
    return id;
  };
  clearTimeout = (id: unknown) => {
    this.#timers = this.#timers.filter((x) => x.id !== id);
  };
  advance(ms: number): void {
    const until = this.t + ms;
    for (;;) {
      this.#timers.sort((a, b) => a.at - b.at);
      const due = this.#timers[0];
      if (!due || due.at > until) break;
      this.#timers.shift();
      this.t = due.at;
      due.fn();
    }
    this.t = until;
  }
}

test('pause stops the output; play resumes where it stopped; replay starts over', () => {
  const a = parseCast(
    cast([
      [0.01, 'o', '1'],
      [2, 'o', '2'],
    ]),
  );
  const clock = new HandClock();
  const p = play([a], { clock });
  p.player.play();
  clock.advance(20); // 20 ms at 20× speed: 0.4 s of the cast
  p.player.pause();
  assert.deepEqual(p.out, ['0:1']);
  clock.advance(150_000);
  assert.deepEqual(p.out, ['0:1'], 'nothing written while paused');
  p.player.toggle();
  clock.advance(80); // the remaining 1.6 s of the cast at 20×
  assert.equal(p.player.state, 'ended');
  assert.deepEqual(p.out, ['0:1', '0:2']);
  p.player.play(); // replay
  assert.equal(p.resets(), 2);
  p.player.dispose();
});
