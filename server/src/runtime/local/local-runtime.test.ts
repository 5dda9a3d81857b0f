import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FakeRuntime, FakeTerminal } from '../../../../tests/unit-support/fake-runtime.ts';
import { testLab } from '../../../../tests/unit-support/test-lab.ts';
import { localRuntime } from './local-runtime.ts';

test('local mode: `host` terminals are the host shell, `container` terminals and the rest the engine', async () => {
  const engine = new FakeRuntime();
  const shells: FakeTerminal[] = [];
  const rt = localRuntime(engine, (size) => {
    const t = new FakeTerminal('local', 'host', size);
    shells.push(t);
    return t;
  });
  const lab = testLab();
  const host = await rt.createLabHost({
    lab,
    sessionId: 's-1',
    instance: 'unit',
    expiresAt: new Date(),
    deadline: new Date(Date.now() + 60_000),
    pooled: false,
  });
  assert.equal(engine.hosts.size, 1, 'lab hosts still come from the engine');
  const byTarget = (target: string) => lab.terminals.find((t) => t.target === target)!;
  const own = await rt.openTerminal(host.id, byTarget('host'), { cols: 90, rows: 30 });
  assert.equal(own, shells[0], 'the host terminal is the local shell');
  assert.deepEqual(shells[0]!.size, { cols: 90, rows: 30 });
  const inside = await rt.openTerminal(host.id, byTarget('container'), { cols: 80, rows: 24 });
  assert.equal(inside, engine.terminals[0], 'the container terminal is the engine exec');
  assert.equal(shells.length, 1);
  await rt.removeLabHost(host.id);
  assert.equal(engine.hosts.size, 0);
});
