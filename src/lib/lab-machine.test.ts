/**
 * Unit tests of the lab's session state machine (no DOM, a fake clock): the happy path,
 * Cancel, Stop, Reset, every way a terminal can end and the message each one shows,
 * stale results of older runs, start errors, reconnects, the countdown, Extend and the
 * page coming and going.
 *   node --test src/lib/lab-machine.test.ts
 */
import assert from 'node:assert/strict';
import { beforeEach, describe, test } from 'node:test';
import {
  DID_NOT_CONNECT,
  type LabEffect,
  type LabEvent,
  LabMachine,
  LOW_TIME_MS,
  RESTARTING,
} from './lab-machine.ts';
import type { EndReason } from './terminal-client.ts';

interface Sess {
  id: string;
}

const MINUTE = 60_000;
let now = 0;
const iso = (ms: number) => new Date(ms).toISOString();

/** The server's answer to the start of `run`: session `s` with its terminals, `minutes` long. */
function created(run: number, s: Sess, terminals: string[], minutes: number): LabEvent<Sess> {
  return { type: 'created', run, session: s, expiresAt: iso(now + minutes * MINUTE), terminals };
}

function machine(): LabMachine<Sess> {
  return new LabMachine<Sess>({ now: () => now });
}

/** The effect types, in order. */
const types = (effects: LabEffect<Sess>[]) => effects.map((e) => e.type);
/** The messages announced, in order. */
const said = (effects: LabEffect<Sess>[]) =>
  effects.flatMap((e) => (e.type === 'announce' ? [e.message] : []));
const deletes = (effects: LabEffect<Sess>[]) => effects.flatMap((e) => (e.type === 'delete' ? [e] : []));

/** Drives a machine to `ready` with one session of two terminals; returns it and the session. */
function ready(m = machine(), id = 's1'): { m: LabMachine<Sess>; s: Sess } {
  const s = { id };
  m.dispatch({ type: 'start', focus: true });
  m.dispatch(created(m.run, s, ['container', 'host'], 30));
  m.dispatch({ type: 'attached', run: m.run, terminal: 'container' });
  m.dispatch({ type: 'attached', run: m.run, terminal: 'host' });
  assert.equal(m.state, 'ready');
  return { m, s };
}

beforeEach(() => {
  now = Date.parse('2026-12-01T10:00:00Z');
});

describe('starting', () => {
  test('start creates a session, connects its terminals, and is ready once all are attached', () => {
    const m = machine();
    const e1 = m.dispatch({ type: 'start', focus: true });
    assert.equal(m.state, 'starting');
    assert.deepEqual(types(e1), ['stop-player', 'announce', 'create']);
    assert.deepEqual(said(e1), ['Starting the lab: creating your sandbox…']);
    const run = m.run;
    const s = { id: 'a' };
    const e2 = m.dispatch(created(run, s, ['container', 'host'], 30));
    assert.deepEqual(e2.at(-1), { type: 'connect', run, session: s });
    assert.equal(m.session, s);
    assert.equal(
      m.dispatch({ type: 'attached', run, terminal: 'container' }).length,
      0,
      'one of two: still starting',
    );
    assert.equal(m.state, 'starting');
    const e3 = m.dispatch({ type: 'attached', run, terminal: 'host' });
    assert.equal(m.state, 'ready');
    assert.deepEqual(said(e3), ['Ready: type in either terminal. 30 minutes left.']);
    assert.deepEqual(e3.at(-1), { type: 'ready', session: s, focus: true });
  });

  test('start is a no-op while starting or ready', () => {
    const m = machine();
    m.dispatch({ type: 'start' });
    assert.deepEqual(m.dispatch({ type: 'start' }), []);
    const r = ready();
    assert.deepEqual(r.m.dispatch({ type: 'start' }), []);
  });

  test('Cancel while the server creates the sandbox: "Start cancelled.", and the late session is deleted', () => {
    const m = machine();
    m.dispatch({ type: 'start' });
    const run = m.run;
    const e = m.dispatch({ type: 'stop' });
    assert.equal(m.state, 'stopped');
    assert.deepEqual(said(e), ['Start cancelled.']);
    assert.deepEqual(deletes(e), []);
    const late = { id: 'late' };
    const e2 = m.dispatch(created(run, late, ['host'], 1));
    assert.deepEqual(e2, [{ type: 'delete', session: late }]);
    assert.equal(m.state, 'stopped');
    assert.equal(m.session, undefined);
  });

  test('the attach timeout fails the start and gives the session back; a stale one does nothing', () => {
    const m = machine();
    m.dispatch({ type: 'start' });
    const s = { id: 'slow' };
    m.dispatch(created(m.run, s, ['host'], 1));
    const e = m.dispatch({ type: 'attach-timeout', run: m.run });
    assert.equal(m.state, 'error');
    assert.deepEqual(said(e), [DID_NOT_CONNECT]);
    assert.deepEqual(deletes(e), [{ type: 'delete', session: s }]);
    const r = ready();
    assert.deepEqual(
      r.m.dispatch({ type: 'attach-timeout', run: r.m.run }),
      [],
      'ready: the timeout is moot',
    );
    assert.equal(r.m.state, 'ready');
  });

  test('a shell that exits before it attached fails the start', () => {
    const m = machine();
    m.dispatch({ type: 'start' });
    const s = { id: 'x' };
    m.dispatch(created(m.run, s, ['host'], 1));
    const e = m.dispatch({ type: 'ended', run: m.run, terminal: 'host', reason: 'shell-exited' });
    assert.equal(m.state, 'error');
    assert.deepEqual(said(e), [DID_NOT_CONNECT]);
    assert.equal(deletes(e).length, 1);
  });

  test('start errors: no server, engine down, capacity with Retry-After, anything else', () => {
    const fail = (code: string, message: string, retryAfter?: number) => {
      const m = machine();
      m.dispatch({ type: 'start' });
      const e = m.dispatch({ type: 'create-failed', run: m.run, error: { code, message, retryAfter } });
      return { state: m.state, said: said(e), types: types(e) };
    };
    assert.deepEqual(fail('no_server', 'x'), {
      state: 'offline',
      said: ['Live labs are not available here.'],
      types: ['announce'],
    });
    const down = fail('engine_unavailable', 'Start `dockerd`.');
    assert.equal(down.state, 'engine-down');
    assert.deepEqual(down.types, ['engine-detail', 'announce']);
    assert.deepEqual(fail('rate_limited', 'Too many labs started.', 30).said, [
      'Too many labs started. Try again in 30 seconds.',
    ]);
    assert.deepEqual(fail('out_of_capacity', 'The server is full.', 300).said, [
      'The server is full. Try again in 5 minutes.',
    ]);
    assert.deepEqual(fail('unknown_lab', 'No lab "x".'), {
      state: 'error',
      said: ['No lab "x".'],
      types: ['announce'],
    });
    assert.deepEqual(fail('network', '').said, ['The lab could not start.']);
  });
});

describe('stop and reset', () => {
  test('Stop ends the run, deletes the session, and offers "Start again"', () => {
    const { m, s } = ready();
    const e = m.dispatch({ type: 'stop' });
    assert.equal(m.state, 'stopped');
    assert.deepEqual(types(e), ['end-run', 'delete', 'announce']);
    assert.deepEqual(said(e), ['Lab stopped: its sandbox is gone. Start again for a fresh one.']);
    assert.deepEqual(deletes(e), [{ type: 'delete', session: s }]);
    assert.equal(m.display.startAgain, true);
    assert.deepEqual(m.dispatch({ type: 'stop' }), [], 'a second Stop does nothing');
  });

  test('Reset deletes the old sandbox first, then creates a fresh one', () => {
    const { m, s } = ready();
    const e = m.dispatch({ type: 'reset' });
    assert.equal(m.state, 'starting');
    assert.deepEqual(said(e), ['Resetting: removing the old sandbox…']);
    assert.deepEqual(deletes(e), [{ type: 'delete', session: s, report: m.run }]);
    assert.ok(!types(e).includes('create'), 'no new session before the old one is gone');
    const e2 = m.dispatch({ type: 'deleted', run: m.run });
    assert.deepEqual(types(e2), ['clear-screens', 'announce', 'create']);
    ready(m, 's2');
    assert.equal(m.session?.id, 's2');
  });

  test('results of an older run are ignored after Reset (its sockets ending, its attach)', () => {
    const { m } = ready();
    const old = m.run;
    m.dispatch({ type: 'reset' });
    m.dispatch({ type: 'deleted', run: m.run });
    assert.deepEqual(m.dispatch({ type: 'ended', run: old, terminal: 'host', reason: 'session-ended' }), []);
    assert.deepEqual(m.dispatch({ type: 'attached', run: old, terminal: 'host' }), []);
    assert.equal(m.state, 'starting');
  });
});

describe('terminals that end: each reason its own message', () => {
  const cases: { reason: EndReason; state: string; message: RegExp; deletes: boolean }[] = [
    {
      reason: 'session-ended',
      state: 'expired',
      message: /^This sandbox has ended \(idle too long, or stopped elsewhere\)/,
      deletes: false,
    },
    { reason: 'not-found', state: 'expired', message: /no longer has this sandbox/, deletes: false },
    { reason: 'bad-token', state: 'expired', message: /no longer accepts this page’s key/, deletes: false },
    {
      reason: 'replaced',
      state: 'error',
      message: /opened in another window, which took over its terminals/,
      deletes: false,
    },
    { reason: 'server-shutdown', state: 'error', message: /^The lab server is restarting\./, deletes: true },
    { reason: 'policy', state: 'error', message: /too many invalid messages/, deletes: true },
    {
      reason: 'forbidden-origin',
      state: 'error',
      message: /does not accept terminals from this address/,
      deletes: true,
    },
    { reason: 'gave-up', state: 'error', message: /Check your network/, deletes: true },
  ];
  for (const c of cases) {
    test(`${c.reason}: ${c.state}, ${c.deletes ? 'deletes' : 'keeps'} the session`, () => {
      const { m, s } = ready();
      const e = m.dispatch({ type: 'ended', run: m.run, terminal: 'host', reason: c.reason });
      assert.equal(m.state, c.state);
      assert.equal(said(e).length, 1);
      assert.match(said(e)[0]!, c.message);
      assert.deepEqual(deletes(e), c.deletes ? [{ type: 'delete', session: s }] : []);
      assert.equal(types(e)[0], 'end-run', 'the run is disposed first');
      assert.equal(m.session, undefined);
      assert.deepEqual(
        m.dispatch({ type: 'ended', run: m.run - 1, terminal: 'container', reason: 'gave-up' }),
        [],
        'the other terminal ending next says nothing more',
      );
    });
  }

  test('the messages are all different', () => {
    const messages = cases.map((c) => {
      const { m } = ready();
      return said(m.dispatch({ type: 'ended', run: m.run, terminal: 'host', reason: c.reason }))[0];
    });
    assert.equal(new Set(messages).size, cases.length);
  });

  test('session-ended near the deadline says time is up', () => {
    const { m } = ready();
    now += 30 * MINUTE - 1000;
    const e = m.dispatch({ type: 'ended', run: m.run, terminal: 'host', reason: 'session-ended' });
    assert.deepEqual(said(e), ['Time is up: this sandbox has been removed. Start again for a fresh one.']);
    assert.equal(m.display.startAgain, true);
  });

  test('a shell that exits once ready, or our own close, changes nothing here', () => {
    const { m } = ready();
    assert.deepEqual(m.dispatch({ type: 'ended', run: m.run, terminal: 'host', reason: 'shell-exited' }), []);
    assert.deepEqual(m.dispatch({ type: 'ended', run: m.run, terminal: 'host', reason: 'closed' }), []);
    assert.equal(m.state, 'ready');
  });
});

describe('while ready', () => {
  test('a lost connection is told once, the way back too; after 3 attempts the session is probed', () => {
    const { m, s } = ready();
    const run = m.run;
    assert.deepEqual(said(m.dispatch({ type: 'reconnecting', run, terminal: 'host', attempt: 0 })), [
      'Connection lost: reconnecting…',
    ]);
    assert.deepEqual(said(m.dispatch({ type: 'reconnecting', run, terminal: 'container', attempt: 0 })), []);
    assert.deepEqual(said(m.dispatch({ type: 'attached', run, terminal: 'host' })), [], 'one still down');
    assert.deepEqual(said(m.dispatch({ type: 'attached', run, terminal: 'container' })), [
      'Reconnected: same shells as before.',
    ]);
    const e = m.dispatch({ type: 'reconnecting', run, terminal: 'host', attempt: 3 });
    assert.deepEqual(e.at(-1), { type: 'probe', run, session: s });
    assert.ok(
      !types(m.dispatch({ type: 'reconnecting', run, terminal: 'host', attempt: 4 })).includes('probe'),
      'one probe at a time',
    );
    assert.deepEqual(m.dispatch({ type: 'probed', run, result: 'alive' }), []);
    const gone = m.dispatch({ type: 'probed', run, result: 'gone' });
    assert.equal(m.state, 'expired');
    assert.match(said(gone)[0]!, /This sandbox has ended/);
  });

  test('a server restart (4013) is told as such, once, and the sandbox stays; the way back as ever', () => {
    const { m } = ready();
    const run = m.run;
    const e = m.dispatch({ type: 'reconnecting', run, terminal: 'host', attempt: 0, restarting: true });
    assert.deepEqual(said(e), [RESTARTING]);
    assert.equal(m.state, 'ready', 'nothing ended: the next server has the same session');
    assert.ok(!types(e).includes('end-run') && !types(e).includes('delete'));
    assert.deepEqual(
      said(m.dispatch({ type: 'reconnecting', run, terminal: 'container', attempt: 0, restarting: true })),
      [],
    );
    assert.deepEqual(
      said(m.dispatch({ type: 'reconnecting', run, terminal: 'host', attempt: 1, restarting: true })),
      [],
    );
    m.dispatch({ type: 'attached', run, terminal: 'host' });
    assert.deepEqual(said(m.dispatch({ type: 'attached', run, terminal: 'container' })), [
      'Reconnected: same shells as before.',
    ]);
    // A plain drop after a restart reads as a plain drop again.
    assert.deepEqual(said(m.dispatch({ type: 'reconnecting', run, terminal: 'host', attempt: 0 })), [
      'Connection lost: reconnecting…',
    ]);
  });

  test("a drop that turns out to be a restart says so; the server's own words end a session", () => {
    const { m } = ready();
    const run = m.run;
    m.dispatch({ type: 'reconnecting', run, terminal: 'host', attempt: 0 });
    assert.deepEqual(
      said(m.dispatch({ type: 'reconnecting', run, terminal: 'host', attempt: 1, restarting: true })),
      [RESTARTING],
    );
    const message = 'The lab machine restarted: press Start for a fresh sandbox.';
    const e = m.dispatch({ type: 'ended', run, terminal: 'host', reason: 'session-ended', message });
    assert.equal(m.state, 'expired');
    assert.deepEqual(said(e), [message]);
  });

  test('the countdown: low time told once, a lost close frame past the deadline ends it', () => {
    const { m, s } = ready();
    assert.deepEqual(m.dispatch({ type: 'tick' }), []);
    now += 30 * MINUTE - LOW_TIME_MS + 1000;
    assert.deepEqual(said(m.dispatch({ type: 'tick' })), [
      '2 minutes left in this lab. Press Extend for more time.',
    ]);
    assert.deepEqual(m.dispatch({ type: 'tick' }), [], 'told once');
    now += LOW_TIME_MS + 4000;
    assert.deepEqual(m.dispatch({ type: 'tick' }), [], 'the server gets a few seconds to close');
    now += 2000;
    const e = m.dispatch({ type: 'tick' });
    assert.equal(m.state, 'expired');
    assert.match(said(e)[0]!, /^Time is up/);
    assert.deepEqual(deletes(e), [{ type: 'delete', session: s }]);
  });

  test('Extend: one request at a time, the new deadline or the refusal told', () => {
    const { m, s } = ready();
    assert.deepEqual(m.dispatch({ type: 'extend' }), [{ type: 'extend', run: m.run, session: s }]);
    assert.equal(m.display.extending, true);
    assert.deepEqual(m.dispatch({ type: 'extend' }), []);
    const e = m.dispatch({ type: 'extended', run: m.run, expiresAt: iso(now + 45 * MINUTE) });
    assert.deepEqual(said(e), ['Extended: 45 minutes left.']);
    assert.equal(m.display.expiresAt, now + 45 * MINUTE);
    assert.equal(m.display.extending, false);
    m.dispatch({ type: 'extend' });
    assert.deepEqual(said(m.dispatch({ type: 'extend-failed', run: m.run, message: 'At the maximum.' })), [
      'At the maximum.',
    ]);
  });

  test("the server's expiry and notices", () => {
    const { m } = ready();
    const e = m.dispatch({ type: 'expiry', run: m.run, expiresAt: iso(now + 5 * MINUTE), warn: true });
    assert.deepEqual(said(e), ['This lab ends in 5 minutes. Press Extend for more time.']);
    assert.deepEqual(
      said(m.dispatch({ type: 'expiry', run: m.run, expiresAt: iso(now + 6 * MINUTE), warn: false })),
      [],
    );
    assert.equal(m.display.expiresAt, now + 6 * MINUTE);
    assert.deepEqual(said(m.dispatch({ type: 'notice', run: m.run, message: 'Shutting down.' })), [
      'Shutting down.',
    ]);
  });

  test('online retries the sockets at once, only with a session', () => {
    const { m } = ready();
    assert.deepEqual(m.dispatch({ type: 'online' }), [{ type: 'retry-now' }]);
    assert.deepEqual(machine().dispatch({ type: 'online' }), []);
  });
});

describe('the page', () => {
  test('leaving ends the session (keepalive); coming back from the cache says so', () => {
    const { m, s } = ready();
    const e = m.dispatch({ type: 'page-left' });
    assert.deepEqual(types(e), ['end-run', 'delete']);
    assert.deepEqual(deletes(e), [{ type: 'delete', session: s, keepalive: true }]);
    const back = m.dispatch({ type: 'page-back' });
    assert.equal(m.state, 'stopped');
    assert.deepEqual(said(back), ['The lab ended when you left the page. Start again for a fresh sandbox.']);
    assert.deepEqual(m.dispatch({ type: 'page-back' }), [], 'said once');
  });

  test('leaving while the server creates the sandbox: the late session is deleted', () => {
    const m = machine();
    m.dispatch({ type: 'start' });
    const run = m.run;
    assert.deepEqual(deletes(m.dispatch({ type: 'page-left' })), []);
    const late = { id: 'late' };
    assert.deepEqual(m.dispatch(created(run, late, [], 0)), [{ type: 'delete', session: late }]);
  });

  test('availability moves only untouched labs to offline or engine-down', () => {
    const m = machine();
    m.dispatch({ type: 'availability', availability: { kind: 'no-server' } });
    assert.equal(m.state, 'offline');
    m.dispatch({ type: 'availability', availability: { kind: 'engine-down', detail: undefined } });
    assert.equal(m.state, 'engine-down');
    const { m: live } = ready();
    live.dispatch({ type: 'availability', availability: { kind: 'no-server' } });
    assert.equal(live.state, 'ready');
  });
});
