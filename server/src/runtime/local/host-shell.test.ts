import assert from 'node:assert/strict';
import { test } from 'node:test';
import { openHostShell } from './host-shell.ts';

test('local host shell: a real pty that echoes, resizes and reports its exit code', async () => {
  const t = openHostShell(
    { shell: '/bin/bash', cwd: '/', env: { PATH: '/usr/bin:/bin', PS1: '$ ' } },
    { cols: 90, rows: 20 },
  );
  let out = '';
  t.stream.on('data', (d: Buffer) => {
    out += d.toString();
  });
  t.stream.write('stty size; exit 7\r');
  assert.equal(await t.exited, 7);
  assert.match(out, /20 90/);
});
