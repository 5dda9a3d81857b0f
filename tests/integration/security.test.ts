/**
 * The `security` lab against a real engine (lesson 11): root inside holds every
 * capability yet is refused what belongs to the lab host (EPERM from the capability
 * rules, the seccomp filter and file ownership, EROFS from the read-only root); the
 * powerless-root and mapped-uid checks fail before and pass after.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { SNAPSHOT_MAX_AGE_MS } from '../../server/src/inspect/snapshot-cache.ts';
import { useLab } from '../support/fixtures.ts';
import { runCheck } from '../support/server.ts';

const afterSnapshotAge = () => new Promise((r) => setTimeout(r, SNAPSHOT_MAX_AGE_MS + 100));
const DROP = 'setpriv --bounding-set=-all --inh-caps=-all --ambient-caps=-all';

describe('security lab (real engine)', () => {
  const lab = useLab('it-security', 'security', {
    env: { CL_POOL_SIZE: '0' },
    terminals: ['container', 'host'],
  });
  const check = (id: string, answer?: string) => runCheck(lab.base, lab.s, id, answer);
  const inside = () => lab.term('container');
  const host = () => lab.term('host');

  test("mapped-uid: 0 and other numbers fail; the lab host's uid passes", async () => {
    const uid = (await host().exec('id -u')).trim();
    assert.match(uid, /^[1-9]\d*$/);
    assert.match(await inside().exec('cat /proc/1/uid_map'), new RegExp(`^\\s*0\\s+${uid}\\s+1$`, 'm'));
    const zero = await check('mapped-uid', '0');
    assert.equal(zero.passed, false);
    assert.match(zero.message, /inside the container/);
    assert.equal((await check('mapped-uid', String(Number(uid) + 1))).passed, false);
    const ok = await check('mapped-uid', uid);
    assert.equal(ok.passed, true, ok.message);
  });

  test('every capability, and still EPERM or EROFS for what belongs to the lab host', async () => {
    assert.match(await inside().exec('grep CapEff /proc/self/status'), /000001ffffffffff/);
    assert.match(await inside().exec('date -s @0 2>&1'), /cannot set date: Operation not permitted/);
    assert.match(await inside().exec('mknod /tmp/null c 1 3 2>&1'), /Operation not permitted/);
    assert.match(await inside().exec('chmod 600 /dev/null 2>&1'), /Operation not permitted/);
    assert.match(
      await inside().exec('chroot / true 2>&1'),
      /cannot change root directory to '\/': Operation not permitted/,
    );
    assert.match(await inside().exec('touch /usr/local/bin/x 2>&1'), /Read-only file system/);
    assert.match(
      await inside().exec('mount -t tmpfs none /media && echo mounted && umount /media'),
      /^mounted$/m,
    );
  });

  test('powerless-root: plain root and an inheritable-only drop fail; an empty bounding set passes', async () => {
    const before = await check('powerless-root');
    assert.equal(before.passed, false, before.message);
    await inside().exec('sleep 3000 & true');
    await afterSnapshotAge();
    const full = await check('powerless-root');
    assert.equal(full.passed, false);
    assert.match(full.message, /still holds capabilities/);
    await inside().exec('kill %1; setpriv --inh-caps=-all sleep 3000 & true');
    await afterSnapshotAge();
    assert.equal(
      (await check('powerless-root')).passed,
      false,
      'the inheritable set alone changes nothing for root',
    );
    await inside().exec(`kill %2; ${DROP} sleep 3000 & true`);
    assert.match(await inside().exec(`sleep 0.3; grep CapEff /proc/$!/status`), /CapEff:\s+0{16}/);
    await afterSnapshotAge();
    const ok = await check('powerless-root');
    assert.equal(ok.passed, true, ok.message);
    assert.match(await inside().exec(`${DROP} mount -t tmpfs none /media 2>&1`), /permission denied/);
  });
});
