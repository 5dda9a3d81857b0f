import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { loadAllLabs, loadLabs } from '../../labs/load.ts';
import { testLab } from '../../tests/unit-support/test-lab.ts';
import { labEnv, readBusyboxApplets, shellQuote, vmMemoryLimit } from './rootfs.ts';

test('lab.env: lab.yaml settings as bash reads them back, quotes and all', () => {
  const lab = testLab({
    app: { command: `exec sh -c 'echo "it's $HOME"'`, hostname: 'box' },
    limits: { memory: '128m', cpus: 0.5, pids: 64, tmp: '16m' },
    vm: { user: 'root', cpuLimit: true },
  });
  const dir = mkdtempSync(path.join(tmpdir(), 'labenv-'));
  try {
    const f = path.join(dir, 'lab.env');
    writeFileSync(f, labEnv(lab));
    const out = execFileSync(
      'bash',
      [
        '-c',
        `source "$1"; printf '%s\\n' "$LAB_APP_CMD" "$LAB_USER" "$LAB_MEMORY" "$LAB_PIDS" "$LAB_CPU_MAX" "$LAB_TERMINALS"`,
        'x',
        f,
      ],
      {
        encoding: 'utf8',
      },
    );
    assert.deepEqual(out.trim().split('\n'), [
      `exec sh -c 'echo "it's $HOME"'`,
      'root',
      String(40 * 1024 * 1024),
      '64',
      '50000 100000',
      'container host',
    ]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  assert.equal(shellQuote("a'b"), `'a'\\''b'`);
});

test('the VM caps a lab’s memory at 40 MiB and applies no CPU limit unless asked', () => {
  assert.equal(
    vmMemoryLimit(testLab({ limits: { memory: '16m', cpus: 0.5, pids: 100, tmp: '16m' } })),
    16 << 20,
  );
  assert.equal(vmMemoryLimit(testLab()), 40 << 20);
  assert.match(labEnv(testLab()), /^LAB_CPU_MAX='max 100000'$/m);
});

test('busybox applet names come from the binary’s own sorted name list', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'bb-'));
  try {
    const f = path.join(dir, 'busybox');
    writeFileSync(
      f,
      Buffer.concat([Buffer.from('\x7fELF junk\0'), Buffer.from('[\0[[\0ash\0cat\0ls\0\0tail')]),
    );
    assert.deepEqual(readBusyboxApplets(f), ['[', '[[', 'ash', 'cat', 'ls']);
    writeFileSync(f, 'no list');
    assert.throws(() => readBusyboxApplets(f), /no applet list/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('loadLabs gives the lab server its labs only; loadAllLabs the browser-only ones too', async () => {
  const server = await loadLabs();
  const all = await loadAllLabs();
  assert.ok(!server.some((l) => l.id === 'networking'), 'the server never runs the networking lab');
  const net = all.find((l) => l.id === 'networking');
  assert.deepEqual(net?.modes, ['browser']);
  assert.equal(net?.vm.user, 'root');
  assert.ok(server.every((l) => l.modes.includes('server')));
});
