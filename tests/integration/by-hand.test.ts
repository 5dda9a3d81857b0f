/**
 * The `by-hand` lab against a real engine (lesson 10): a container built inside the
 * nested container from busybox on a tmpfs, an overlay, pivot_root, a fresh /proc and a
 * hostname. The own-root check fails before (and for a container that has not pivoted)
 * and passes after.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { SNAPSHOT_MAX_AGE_MS } from '../../server/src/inspect/snapshot-cache.ts';
import { useLab } from '../support/fixtures.ts';
import { runCheck } from '../support/server.ts';

const afterSnapshotAge = () => new Promise((r) => setTimeout(r, SNAPSHOT_MAX_AGE_MS + 100));
const SERVER = 'httpd -f -p 8081 -h /www';

describe('by-hand lab (real engine)', () => {
  const lab = useLab('it-by-hand', 'by-hand', {
    env: { CL_POOL_SIZE: '0' },
    terminals: ['container', 'host'],
  });
  const check = (id: string, answer?: string) => runCheck(lab.base, lab.s, id, answer);
  const inside = () => lab.term('container');
  const host = () => lab.term('host');

  test("own-root: fails for the lab's own container, which has the lab host's root", async () => {
    const roots = await host().exec(
      "stat -Lc '%d:%i' / /proc/$(pgrep -x -f '/bin/sh /usr/local/bin/box-idle')/root",
    );
    const [a, b] = roots.trim().split('\n');
    assert.equal(a, b, "the lab's container shares the lab host's root");
    const r = await check('own-root');
    assert.equal(r.passed, false, r.message);
    assert.ok(r.hint);
  });

  test("own-root: fails for a container of one's own that has not pivoted", async () => {
    await inside().exec('unshare -m -p -u -f --kill-child sleep 4000 & true');
    await inside().exec('sleep 0.5');
    await afterSnapshotAge();
    const r = await check('own-root');
    assert.equal(r.passed, false);
    assert.match(r.message, /no pivot_root yet/);
    await inside().exec("kill -KILL $(pgrep -x -f 'sleep 4000'); sleep 0.3");
  });

  test('a root filesystem without its libraries: exec reports "not found"; with them it runs', async () => {
    await inside().exec(
      'mkdir /tmp/rootfs && mount -t tmpfs -o size=6m rootfs /tmp/rootfs && mkdir -p /tmp/rootfs/bin /tmp/rootfs/proc /tmp/rootfs/old /tmp/rootfs/www',
    );
    await inside().exec(
      'cp /bin/busybox /tmp/rootfs/bin/ && for a in sh ls ps cat mount umount hostname httpd; do ln -s busybox /tmp/rootfs/bin/$a; done && cp /opt/lab/index.html /tmp/rootfs/www/',
    );
    const run =
      "unshare -m -p -u -f --kill-child sh -c 'cd /tmp/rootfs && pivot_root . old && exec /bin/busybox echo hello from my own root'";
    assert.match(await inside().exec(run), /exec: \/bin\/busybox: not found/);
    await inside().exec(
      "for f in $(ldd /tmp/rootfs/bin/busybox | grep -o '/[^ ]*'); do mkdir -p /tmp/rootfs$(dirname $f) && cp $f /tmp/rootfs$f; done",
    );
    assert.match(await inside().exec(run), /^hello from my own root$/m);
  });

  test('own-root passes once the server runs in its own root; its mount table is its own', async () => {
    await inside().exec(
      'mkdir -p /tmp/layer/upper /tmp/layer/work /tmp/newroot && mount -t overlay box -o lowerdir=/tmp/rootfs,upperdir=/tmp/layer/upper,workdir=/tmp/layer/work /tmp/newroot',
    );
    await inside().exec(
      `unshare -m -p -u -f --kill-child sh -c 'cd /tmp/newroot && pivot_root . old && exec /bin/busybox sh -c "mount -t proc proc /proc && umount -l /old && hostname handmade && exec ${SERVER}"' & true`,
    );
    const p = (await inside().exec(`sleep 0.5; pgrep -x -f '${SERVER}'`)).trim();
    assert.match(p, /^\d+$/);
    assert.equal((await inside().exec(`nsenter -t ${p} -u hostname`)).trim(), 'handmade');
    const mounts = (await inside().exec(`nsenter -t ${p} -m -p cat /proc/self/mounts`)).trim().split('\n');
    assert.deepEqual(
      mounts.map((l) => l.split(' ').slice(1, 3).join(' ')),
      ['/ overlay', '/proc proc'],
    );
    assert.match(
      await host().exec('busybox wget -qO- http://127.0.0.1:8081/'),
      /Served from a root filesystem built by hand/,
    );
    await afterSnapshotAge();
    const ok = await check('own-root');
    assert.equal(ok.passed, true, ok.message);
    // A write lands in the upper layer, not in the root filesystem below.
    await inside().exec(`nsenter -t ${p} -m -p sh -c 'echo x > /www/note.txt'`);
    assert.equal((await inside().exec('ls /tmp/layer/upper/www')).trim(), 'note.txt');
    assert.equal((await inside().exec('ls /tmp/rootfs/www')).trim(), 'index.html');
  });
});
