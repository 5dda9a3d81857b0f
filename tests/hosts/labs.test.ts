/**
 * Every lab on the test host, through our server: its lab host starts, its nested
 * container runs, and `ps -ef` inside and outside tell the lesson's story (the app is
 * PID 1 inside; outside it is another PID, child of unshare; NSpid maps one to the other).
 * Also the user mapping, the lab host's own uid from the range the engine allows, and the
 * lessons' own commands that need mounts and namespaces.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { loadLabs } from '../../labs/load.ts';
import {
  createSession,
  deleteSession,
  type RunningServer,
  type SessionInfo,
  sessionContainers,
  startServer,
  TermClient,
} from '../support/server.ts';
import { engineFacts, hostKind } from './support.ts';

const kind = hostKind();
const labs = await loadLabs();
const instance = `hosts-labs-${process.pid}`;
/**
 * Where the engine applies AppArmor, lab hosts run under our profile (issue 11). Where it
 * does not, they are unconfined: `unconfined`, or on a rootless engine the profile runc
 * itself runs under, which Debian 13's AppArmor ships in unconfined mode ("runc (unconfined)").
 */
const confinement = (await engineFacts()).apparmor
  ? /^containerlabs-labhost \(enforce\)$/
  : /^(unconfined|\S+ \(unconfined\))$/;

/** `ps -eo pid=,ppid=,args=` rows. */
function rows(text: string): { pid: number; ppid: number; args: string }[] {
  return text
    .split('\n')
    .map((l) => /^\s*(\d+)\s+(\d+)\s+(.*)$/.exec(l))
    .filter((m) => m !== null)
    .map((m) => ({ pid: Number(m[1]), ppid: Number(m[2]), args: m[3]!.trim() }));
}

describe(`every lab on the ${kind} host`, () => {
  let srv: RunningServer;
  before(async () => {
    srv = await startServer({ CL_INSTANCE: instance, CL_POOL_SIZE: '0' });
  });
  after(async () => {
    await srv?.stop();
  });

  for (const lab of labs) {
    describe(lab.id, () => {
      let s: SessionInfo;
      let host: TermClient;
      let box: TermClient;
      let uid: number;
      before(async () => {
        s = await createSession(srv.base, lab.id);
        const [c] = await sessionContainers(s.id);
        uid = Number(c?.Labels['containerlabs.uid']);
        host = await TermClient.open(srv.base, s, 'host');
        box = await TermClient.open(srv.base, s, 'container');
        await host.waitFor(/reader@labhost:.*\$ $/m);
        await box.waitFor(/root@box:.*# $/m);
      });
      after(async () => {
        await host?.close();
        await box?.close();
        if (s) assert.equal(await deleteSession(srv.base, s), 204);
      });

      test('ps -ef: the app is PID 1 inside, another PID outside, child of unshare', async (t) => {
        const inside = await box.exec('ps -ef');
        const outside = await host.exec('ps -ef');
        t.diagnostic(`inside:\n${inside}`);
        t.diagnostic(`outside:\n${outside}`);
        assert.match(inside, /^UID\s+PID\s+PPID/m);
        const insideRows = rows(await box.exec('ps -eo pid=,ppid=,args='));
        const app = insideRows.find((r) => r.pid === 1);
        assert.ok(app, `no PID 1 inside:\n${inside}`);
        assert.doesNotMatch(app.args, /bash|nsenter/, 'PID 1 inside is the app, not a shell');
        const hostRows = rows(await host.exec('ps -eo pid=,ppid=,args='));
        const unsharePid = Number((await host.exec('cat /run/lab/unshare.pid')).trim());
        const unshare = hostRows.find((r) => r.pid === unsharePid);
        assert.match(unshare?.args ?? '', /^unshare -U -r -p -f -m -u -i --mount-proc/);
        const outer = hostRows.find((r) => r.ppid === unsharePid);
        assert.ok(outer, `no child of unshare on the host:\n${outside}`);
        assert.notEqual(outer.pid, 1);
        assert.equal(outer.args, app.args, 'the same command line on both sides');
        assert.match(
          await host.exec(`grep NSpid /proc/${outer.pid}/status`),
          new RegExp(`^NSpid:\\s+${outer.pid}\\s+1\\s*$`),
        );
      });

      test(`AppArmor: ${confinement.source}, outside and inside`, async () => {
        assert.match((await host.exec('cat /proc/self/attr/current')).trim(), confinement);
        assert.match((await box.exec('cat /proc/1/attr/current')).trim(), confinement);
      });

      test("users: root inside is the lab host's own uid outside", async () => {
        const range = kind === 'rootless' ? [20_000, 59_999] : [2_000_000_000, 2_000_099_999];
        assert.ok(uid >= range[0]! && uid <= range[1]!, `uid ${uid} outside ${range.join('-')}`);
        assert.equal((await host.exec('id -u; id -un')).trim(), `${uid}\nreader`);
        assert.equal((await box.exec('id -u; id -un')).trim(), '0\nroot');
        assert.match((await box.exec('cat /proc/self/uid_map')).trim(), new RegExp(`^0\\s+${uid}\\s+1$`));
      });

      test("the lessons' commands: a PID namespace with its own /proc, a mount, a hostname", async () => {
        // content/04-namespaces.mdx, in the order the lesson runs them.
        const ps = await host.exec('unshare -U -r -p -f --mount-proc ps -ef');
        assert.match(ps, /^root\s+1\s+0\s.*ps -ef$/m, ps);
        assert.match(
          await box.exec('mount -t tmpfs lesson4 /media && findmnt /media'),
          /\/media\s+lesson4\s+tmpfs/,
        );
        assert.equal((await host.exec('findmnt /media; echo "rc=$?"')).trim(), 'rc=1');
        assert.equal((await box.exec('umount /media && echo unmounted')).trim(), 'unmounted');
        assert.equal(
          (await host.exec("unshare -U -r -u sh -c 'hostname demo; hostname'; hostname")).trim(),
          'demo\nlabhost',
        );
      });
    });
  }
});
