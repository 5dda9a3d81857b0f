import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { type OciBundleSnapshot, shortenConfig } from './oci-bundle.ts';

test('shortenConfig: seccomp rules become counts per action; everything else stays', () => {
  const config = {
    ociVersion: '1.0.2-dev',
    process: { args: ['/usr/local/sbin/lab-init'] },
    linux: {
      namespaces: [{ type: 'pid' }],
      seccomp: {
        defaultAction: 'SCMP_ACT_ERRNO',
        architectures: ['SCMP_ARCH_X86_64'],
        syscalls: [
          { names: ['read', 'write'], action: 'SCMP_ACT_ALLOW' },
          { names: ['clone3'], action: 'SCMP_ACT_ERRNO' },
        ],
      },
    },
  };
  const s = shortenConfig(config) as typeof config & { linux: { seccomp: { syscalls: string } } };
  assert.deepEqual(s.process, config.process);
  assert.deepEqual(s.linux.namespaces, config.linux.namespaces);
  assert.equal(s.linux.seccomp.defaultAction, 'SCMP_ACT_ERRNO');
  assert.match(
    s.linux.seccomp.syscalls,
    /^2 rules naming 2 system calls SCMP_ACT_ALLOW, 1 system call SCMP_ACT_ERRNO/,
  );
  const noSeccomp = { linux: { namespaces: [] } };
  assert.equal(shortenConfig(noSeccomp), noSeccomp);
});

test('the committed bundle snapshot is a lab host as labHostSpec makes it', () => {
  const snap = JSON.parse(
    readFileSync(join(import.meta.dirname, '_data', 'oci-bundle.json'), 'utf8'),
  ) as OciBundleSnapshot;
  const c = snap.config as {
    process: {
      args: string[];
      user: { uid: number };
      noNewPrivileges: boolean;
      capabilities: Record<string, unknown>;
    };
    root: { readonly: boolean };
    linux: {
      namespaces: { type: string }[];
      resources: { memory: { limit: number }; pids: { limit: number } };
    };
  };
  assert.deepEqual(c.process.args, ['/usr/local/sbin/lab-init']);
  assert.ok(c.process.user.uid >= 2_000_000_000, 'a lab host uid, never root');
  assert.equal(c.process.noNewPrivileges, true);
  assert.deepEqual(c.process.capabilities, {}, 'every capability dropped');
  assert.equal(c.root.readonly, true);
  assert.deepEqual(c.linux.namespaces.map((n) => n.type).sort(), [
    'cgroup',
    'ipc',
    'mount',
    'network',
    'pid',
    'uts',
  ]);
  assert.equal(c.linux.resources.memory.limit, 128 * 1024 * 1024);
  assert.equal(c.linux.resources.pids.limit, 100);
  assert.match(snap.engine.docker, /^\d+\.\d+/);
});
