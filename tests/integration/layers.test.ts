/**
 * The `layers` lab against a real engine (lesson 8): an overlay mounted by hand in the
 * nested container, copy-up and whiteouts in its upper layer, and the lab host's own
 * root as an overlay of the image's layers plus one; each step check fails before its
 * step and passes after.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import Docker from 'dockerode';
import { labImageTag } from '../../labs/images.ts';
import { SNAPSHOT_MAX_AGE_MS } from '../../server/src/inspect/snapshot-cache.ts';
import { useLab } from '../support/fixtures.ts';
import { runCheck } from '../support/server.ts';

/** Lets the snapshots taken before a step expire (server/src/inspect/snapshot-cache.ts). */
const afterSnapshotAge = () => new Promise((r) => setTimeout(r, SNAPSHOT_MAX_AGE_MS + 100));
const MOUNT =
  'mount -t overlay layers -o lowerdir=/tmp/image/layer2:/tmp/image/layer1,upperdir=/tmp/c/upper,workdir=/tmp/c/work /tmp/c/merged';

describe('layers lab (real engine)', () => {
  const lab = useLab('it-layers', 'layers', { env: { CL_POOL_SIZE: '0' }, terminals: ['container', 'host'] });
  const check = (id: string, answer?: string) => runCheck(lab.base, lab.s, id, answer);
  const inside = () => lab.term('container');
  const host = () => lab.term('host');

  test('overlay-mounted: fails before the mount (the root overlay does not count) and after a failed one; passes after', async () => {
    assert.equal(
      (await inside().exec('findmnt -no FSTYPE /')).trim(),
      'overlay',
      'the root is an overlay inside too',
    );
    const before = await check('overlay-mounted');
    assert.equal(before.passed, false, before.message);
    assert.ok(before.hint);
    // A mount point named like a mountinfo line of an overlay: the kernel escapes the
    // newline and blanks (\012, \040), so no line of the mount snapshot reads as one.
    const forged = "$'/tmp/f\\n230 190 0:83 / /tmp/fake rw - overlay overlay rw,lowerdir=/a:/b'";
    assert.match(await inside().exec(`mkdir -p ${forged} && mount -t tmpfs t ${forged} && echo ok`), /^ok$/m);
    await afterSnapshotAge();
    const forgedCheck = await check('overlay-mounted');
    assert.equal(
      forgedCheck.passed,
      false,
      `a tmpfs named like an overlay is no overlay: ${forgedCheck.message}`,
    );
    await inside().exec(
      'cp -r /opt/image /tmp/image && mkdir -p /tmp/c/upper /tmp/c/work /tmp/c/merged /root/work',
    );
    // The lesson's broken thing: workdir on another filesystem than upperdir.
    const wrong = await inside().exec(
      `${MOUNT.replace('workdir=/tmp/c/work', 'workdir=/root/work')}; echo "rc=$?"`,
    );
    assert.match(wrong, /wrong fs type, bad option[\s\S]*rc=32/);
    await afterSnapshotAge();
    assert.equal((await check('overlay-mounted')).passed, false, 'a failed mount is no mount');
    assert.match(await inside().exec(`${MOUNT} && echo mounted`), /^mounted$/m);
    await afterSnapshotAge();
    const ok = await check('overlay-mounted');
    assert.equal(ok.passed, true, ok.message);
    assert.match(ok.message, /\/tmp\/c\/merged/);
    // Hundreds of mounts more: the snapshot reads at most 300 lines per mount namespace,
    // the check still answers, and quickly.
    await inside().exec(
      'mkdir -p /tmp/many && for i in $(seq 400); do mkdir /tmp/many/$i && mount -t tmpfs -o size=4k m /tmp/many/$i; done',
      60_000,
    );
    assert.equal((await inside().exec('grep -c " /tmp/many/" /proc/self/mountinfo')).trim(), '400');
    await afterSnapshotAge();
    const t0 = Date.now();
    const still = await check('overlay-mounted');
    assert.equal(still.passed, true, still.message);
    assert.ok(Date.now() - t0 < 5000, `the check took ${Date.now() - t0} ms`);
  });

  test('the top layer wins; a write copies up, a delete leaves a whiteout; the layers never change', async () => {
    assert.equal((await inside().exec('cat /tmp/c/merged/app/config.txt')).trim(), 'colour=green');
    await inside().exec('echo colour=red > /tmp/c/merged/app/config.txt && rm /tmp/c/merged/app/notes.txt');
    assert.equal((await inside().exec('cat /tmp/c/upper/app/config.txt')).trim(), 'colour=red');
    assert.equal(
      (await inside().exec("stat -c '%F %t,%T' /tmp/c/upper/app/notes.txt")).trim(),
      'character special file 0,0',
    );
    assert.equal((await inside().exec('cat /tmp/image/layer2/app/config.txt')).trim(), 'colour=green');
    assert.match(await inside().exec('ls /tmp/image/layer1/app'), /notes\.txt/);
    assert.doesNotMatch(await inside().exec('ls /tmp/c/merged/app'), /notes\.txt/);
  });

  test("root-layers: the lab host's root has the image's layers plus Docker's init layer", async () => {
    const count = Number(
      (
        await host().exec(
          "findmnt -no OPTIONS / | tr , '\\n' | sed -n 's/^lowerdir=//p' | tr : '\\n' | wc -l",
        )
      ).trim(),
    );
    const image = await new Docker().getImage(labImageTag('layers')).inspect();
    assert.equal(count, image.RootFS.Layers!.length + 1, 'the image layers and one more');
    const wrong = await check('root-layers', String(count - 1));
    assert.equal(wrong.passed, false);
    assert.match(wrong.message, /image/);
    assert.equal((await check('root-layers', String(count + 1))).passed, false);
    const ok = await check('root-layers', String(count));
    assert.equal(ok.passed, true, ok.message);
  });
});
