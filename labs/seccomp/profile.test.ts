import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import {
  profileIsCurrent,
  profilePath,
  REFUSED_NAMESPACE_FLAGS,
  type SeccompProfile,
  type SeccompRule,
} from './generate.ts';

const profile = JSON.parse(readFileSync(profilePath, 'utf8')) as SeccompProfile;
const allowRules = profile.syscalls.filter((r) => r.action === 'SCMP_ACT_ALLOW');
const rulesFor = (name: string): SeccompRule[] => profile.syscalls.filter((r) => r.names.includes(name));
const unconditional = (r: SeccompRule) => (r.args ?? []).length === 0;

describe('labs/seccomp/profile.json', () => {
  it('is what generate.ts makes from moby-default.json (run node labs/seccomp/generate.ts)', () => {
    assert.ok(profileIsCurrent());
  });

  it('refuses by default with an error, like Docker', () => {
    assert.equal(profile.defaultAction, 'SCMP_ACT_ERRNO');
  });

  it('allows unshare and setns only without CLONE_NEWNET, CLONE_NEWCGROUP and CLONE_NEWTIME', () => {
    assert.equal(REFUSED_NAMESPACE_FLAGS, 0x42000080);
    for (const [name, index] of [
      ['unshare', 0],
      ['setns', 1],
    ] as const) {
      const rules = rulesFor(name);
      assert.equal(rules.length, 1, name);
      const r = rules[0]!;
      assert.equal(r.action, 'SCMP_ACT_ALLOW');
      assert.deepEqual(r.args, [{ index, value: 0x42000080, valueTwo: 0, op: 'SCMP_CMP_MASKED_EQ' }]);
      assert.deepEqual(r.includes, {});
      assert.deepEqual(r.excludes, {});
    }
  });

  it('allows mount, umount2, sethostname, pivot_root', () => {
    for (const name of ['mount', 'umount2', 'sethostname', 'pivot_root']) {
      assert.ok(
        allowRules.some((r) => r.names.includes(name) && unconditional(r)),
        name,
      );
    }
  });

  it('passes exactly the namespace kinds the nested container uses (what the kernel would see)', () => {
    // SCMP_CMP_MASKED_EQ with valueTwo 0: allowed when (flags & value) == 0.
    const [r] = rulesFor('unshare');
    const passes = (flags: number) => (flags & r!.args![0]!.value) === 0;
    const CLONE_NEWNS = 0x20000;
    const CLONE_NEWUTS = 0x4000000;
    const CLONE_NEWIPC = 0x8000000;
    const CLONE_NEWUSER = 0x10000000;
    const CLONE_NEWPID = 0x20000000;
    // unshare -U -r -p -f -m -u -i (lab-init); -f and -r add no unshare flag.
    assert.ok(passes(CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC));
    for (const [name, flag] of [
      ['CLONE_NEWNET', 0x40000000],
      ['CLONE_NEWCGROUP', 0x02000000],
      ['CLONE_NEWTIME', 0x80],
    ] as const) {
      assert.ok(!passes(flag), name);
      assert.ok(!passes(flag | CLONE_NEWUSER), `${name} with a new user namespace`);
    }
  });

  it('keeps clone masked as in the default, and clone3 answering ENOSYS', () => {
    const clone = rulesFor('clone');
    assert.ok(clone.length > 0);
    for (const r of clone) {
      assert.equal(r.action, 'SCMP_ACT_ALLOW');
      assert.equal(r.args?.length, 1);
      assert.equal(r.args![0]!.op, 'SCMP_CMP_MASKED_EQ');
      assert.equal(r.args![0]!.value, 0x7e020000, 'every CLONE_NEW* flag stays refused');
      // In clone(2) the low byte is the exit signal (CSIGNAL), not CLONE_NEWTIME: a fork
      // with SIGCHLD (17) must pass.
      assert.equal(r.args![0]!.value & 0xff, 0, 'no mask on the exit signal');
    }
    const clone3 = rulesFor('clone3').find((r) => !r.includes.arches);
    assert.equal(clone3?.action, 'SCMP_ACT_ERRNO');
    assert.equal(clone3?.errnoRet, 38);
  });

  it('allows none of keyctl, bpf, io_uring, the new mount API, or capability-only syscalls', () => {
    const refused = [
      'keyctl',
      'add_key',
      'request_key',
      'bpf',
      'io_uring_setup',
      'io_uring_enter',
      'io_uring_register',
      'fsopen',
      'fsconfig',
      'fsmount',
      'fspick',
      'move_mount',
      'open_tree',
      'mount_setattr',
      'setdomainname',
      'chroot',
      'init_module',
      'finit_module',
      'delete_module',
      'kexec_load',
      'reboot',
      'perf_event_open',
      'open_by_handle_at',
      'name_to_handle_at',
      'syslog',
      'acct',
      'swapon',
      'process_vm_writev',
      'userfaultfd',
    ];
    for (const name of refused) {
      assert.ok(!allowRules.some((r) => r.names.includes(name)), `${name} must not be allowed`);
    }
  });

  it('has no rule that depends on a capability (the lab host has none)', () => {
    for (const r of profile.syscalls) {
      assert.equal(r.includes.caps, undefined, r.names.join(','));
      assert.equal(r.excludes.caps, undefined, r.names.join(','));
    }
  });
});
