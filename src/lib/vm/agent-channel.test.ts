import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AgentChannel, AgentError } from './agent-channel.ts';

const enc = new TextEncoder();
const dec = new TextDecoder();

/** A channel with manual timers and a scripted guest. */
function setup() {
  const sent: string[] = [];
  const timers: { fn: () => void; ms: number; id: number }[] = [];
  let n = 0;
  let nextId = 1;
  const ch = new AgentChannel({
    send: (b) => sent.push(dec.decode(b)),
    nonce: () => `nonce${String(++n).padStart(4, '0')}`,
    setTimeout: (fn, ms) => {
      const id = nextId++;
      timers.push({ fn, ms, id });
      return id;
    },
    clearTimeout: (h) => {
      const i = timers.findIndex((t) => t.id === h);
      if (i >= 0) timers.splice(i, 1);
    },
  });
  const answer = (nonce: string, body: Uint8Array | string, status = 0) => {
    ch.feed(enc.encode(`\0CLBEGIN ${nonce}\n`));
    ch.feed(typeof body === 'string' ? enc.encode(body) : body);
    ch.feed(enc.encode(`\0CLEND ${nonce} ${status}\n`));
  };
  const fire = (ms: number) => {
    const t = timers.find((x) => x.ms === ms);
    assert.ok(t, `a ${ms} ms timer is set`);
    timers.splice(timers.indexOf(t), 1);
    t.fn();
  };
  return { ch, sent, answer, fire, timers };
}

test('a request is one line; its answer is what lies between the markers, NULs and newlines included', async () => {
  const { ch, sent, answer } = setup();
  const p = ch.request('processes');
  assert.deepEqual(sent, ['nonce0001 processes\n']);
  answer('nonce0001', 'SELF\x0042\x00CMD\x001\x00a\nb\x00', 0);
  const r = await p;
  assert.equal(r.status, 0);
  assert.equal(dec.decode(r.output), 'SELF\x0042\x00CMD\x001\x00a\nb\x00');
});

test('output that imitates a trailer with another nonce does not end the answer', async () => {
  const { ch, answer } = setup();
  const p = ch.request('processes');
  answer('nonce0001', 'x\x00CLEND guessed 0\nstill mine\n', 3);
  const r = await p;
  assert.equal(r.status, 3);
  assert.equal(dec.decode(r.output), 'x\x00CLEND guessed 0\nstill mine\n');
});

test('bytes before the answer begins (a duplicate, leftovers) are dropped', async () => {
  const { ch, answer } = setup();
  ch.feed(enc.encode('junk before anyone asked\n'));
  const p = ch.request('cgroup');
  ch.feed(enc.encode('stale tail of an earlier answer\n\x00CLEND nonce9999 0\n'));
  answer('nonce0001', 'version 2\n');
  assert.equal(dec.decode((await p).output), 'version 2\n');
});

test('requests queue: one at a time, in order', async () => {
  const { ch, sent, answer } = setup();
  const a = ch.request('ping');
  const b = ch.request('cgroup');
  assert.equal(sent.length, 1);
  answer('nonce0001', '');
  await a;
  assert.deepEqual(sent, ['nonce0001 ping\n', 'nonce0002 cgroup\n']);
  answer('nonce0002', 'ok');
  assert.equal(dec.decode((await b).output), 'ok');
});

test('resend: a lost line is sent again with a new nonce, and either answer counts', async () => {
  const { ch, sent, answer, fire } = setup();
  const p = ch.request('ping', { resendMs: 400, timeoutMs: 5000 });
  fire(400);
  assert.deepEqual(sent, ['nonce0001 ping\n', 'nonce0002 ping\n']);
  answer('nonce0001', '');
  assert.equal((await p).status, 0);
});

test('no answer in time: AgentError timeout, and the next request still works', async () => {
  const { ch, answer, fire } = setup();
  const p = ch.request('network', { timeoutMs: 1000 });
  const q = ch.request('ping');
  fire(1000);
  await assert.rejects(p, (e: unknown) => e instanceof AgentError && e.code === 'timeout');
  answer('nonce0002', '');
  assert.equal((await q).status, 0);
});

test('close fails what is pending and refuses new requests; bad commands are refused', async () => {
  const { ch } = setup();
  const p = ch.request('ping');
  ch.close();
  await assert.rejects(p, (e: unknown) => e instanceof AgentError && e.code === 'closed');
  await assert.rejects(ch.request('ping'), /gone/);
  const { ch: ch2 } = setup();
  await assert.rejects(ch2.request('ping; rm -rf /'), /bad agent command/);
});
