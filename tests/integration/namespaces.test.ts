/**
 * The `namespaces` lab against a real engine: every namespace kind observed from both
 * sides, as the lesson claims.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { useLab } from '../support/fixtures.ts';

const KINDS = ['pid', 'mnt', 'uts', 'ipc', 'user', 'net', 'cgroup'] as const;

function nsLinks(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of text.matchAll(/(\w+):\[(\d+)\]/g)) out[m[1]!] = m[2]!;
  return out;
}

describe('namespaces lab (real engine)', () => {
  const lab = useLab('it-namespaces', 'namespaces', { terminals: ['container', 'host'] });
  // (The fixture opens the terminals in before(); these reach them from the tests.)
  const inside = { exec: (cmd: string) => lab.term('container').exec(cmd) };
  const host = { exec: (cmd: string) => lab.term('host').exec(cmd) };

  const links = 'for n in pid mnt uts ipc user net cgroup; do readlink /proc/$$/ns/$n; done';

  test('UTS: the hostname differs inside and outside', async () => {
    assert.equal((await inside.exec('hostname')).trim(), 'box');
    assert.equal((await host.exec('hostname')).trim(), 'labhost');
  });

  test('/proc/<pid>/ns: pid, mnt, uts, ipc and user are separate; net is shared', async () => {
    const a = nsLinks(await inside.exec(links));
    const b = nsLinks(await host.exec(links));
    for (const k of KINDS) assert.ok(a[k] && b[k], `${k} link read on both sides`);
    for (const k of ['pid', 'mnt', 'uts', 'ipc', 'user'] as const)
      assert.notEqual(a[k], b[k], `${k} is separate`);
    assert.equal(a.net, b.net, 'the nested container shares the lab host network namespace');
  });

  test('MNT: a tmpfs mounted inside is invisible on the host', async () => {
    assert.match(await inside.exec('cat /mnt/inside/hello.txt'), /Written inside the container/);
    assert.equal((await inside.exec('grep -c " /mnt/inside " /proc/self/mounts')).trim(), '1');
    assert.equal((await host.exec('grep -c " /mnt/inside " /proc/self/mounts')).trim(), '0');
    const hostLs = await host.exec('ls /mnt/inside');
    assert.match(hostLs, /README\.txt/);
    assert.doesNotMatch(hostLs, /hello\.txt/);
  });

  test('IPC: the shared-memory segment made inside is not listed outside', async () => {
    assert.equal((await inside.exec('ipcs -m | grep -c "^0x"')).trim(), '1');
    assert.equal((await host.exec('ipcs -m | grep -c "^0x"')).trim(), '0');
  });

  test("PID and User: the app is PID 1 and root inside; uid_map maps 0 to the lab host's uid", async () => {
    assert.equal((await inside.exec('id -u')).trim(), '0');
    assert.match(await inside.exec('ps -o pid=,args= -p 1'), /^\s*1 .*httpd/);
    const pid = (await host.exec('pgrep -f "httpd -f -p 8080"')).trim();
    assert.match(pid, /^\d+$/);
    const uid = (await host.exec('id -u')).trim();
    assert.match(uid, /^[1-9]\d*$/);
    assert.notEqual(uid, '1000', 'a uid of its own, not the old shared 1000');
    assert.equal((await host.exec('id -un')).trim(), 'reader');
    assert.match(await host.exec(`cat /proc/${pid}/uid_map`), new RegExp(`^\\s*0\\s+${uid}\\s+1\\s*$`));
    assert.match(
      await host.exec(`grep NSpid /proc/${pid}/status`),
      new RegExp(`^NSpid:\\s+${pid}\\s+1\\s*$`),
    );
  });

  test('the shared-namespaces check accepts what /proc/1/ns shows on both sides, and its hint does not give it away', async () => {
    const check = async (answer: string) => {
      const r = await fetch(`${lab.base}/api/v1/sessions/${lab.s.id}/checks/shared-namespaces`, {
        method: 'POST',
        headers: { authorization: `Bearer ${lab.s.token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ answer }),
      });
      assert.equal(r.status, 200);
      return (await r.json()) as { passed: boolean; message: string; hint?: string };
    };
    // The reader's way: list /proc/1/ns on each side and keep the kinds whose numbers agree
    // (readlink: ls -l lines are wider than the test's terminal).
    const a = nsLinks(await inside.exec('readlink /proc/1/ns/*'));
    const b = nsLinks(await host.exec('readlink /proc/1/ns/*'));
    const shared = Object.keys(a).filter((k) => a[k] === b[k]);
    assert.ok(shared.includes('net') && shared.includes('cgroup'), shared.join(', '));
    const ok = await check(shared.join(', '));
    assert.equal(ok.passed, true, `${shared.join(', ')}: ${ok.message}`);
    const wrong = await check('pid, uts');
    assert.equal(wrong.passed, false);
    for (const k of shared)
      assert.doesNotMatch(wrong.hint ?? '', new RegExp(`\\b${k}\\b`), `the hint names ${k}`);
  });

  test('new network and cgroup namespaces are refused; user, UTS, IPC, mount and PID ones may be made', async () => {
    assert.match(await host.exec('unshare -n true 2>&1; echo "rc=$?"'), /rc=1/);
    assert.match(await host.exec('unshare -C true 2>&1; echo "rc=$?"'), /rc=1/);
    assert.match(await host.exec('unshare -U -r -u -i -m -p -f true; echo "rc=$?"'), /rc=0/);
  });

  test('DELETE removes the lab host before answering 204', async () => {
    await lab.endAndCheck();
  });
});
