/**
 * AppArmor on the test hosts (issue 11). On the rootful host the engine applies AppArmor
 * and the disk loads our profile at boot, as setup does on an operator's machine:
 * - lab hosts run under labs/apparmor/containerlabs-labhost in enforce mode, and it refuses
 *   what the kernel alone would let the nested root do (binds of /proc, writes to
 *   /proc/sys, other filesystems, shared propagation), the audit log naming our profile;
 * - with the profile unloaded (through the guest agent), open and code modes refuse to
 *   start and say how to load it; local mode starts, runs lab hosts unconfined and says so.
 * On the rootless host the engine applies no AppArmor at all (a rootless engine cannot
 * load or apply profiles): the server starts and says so.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { createSession, deleteSession, ROOT, startServer, TermClient } from '../support/server.ts';
import { scaled } from '../support/slowness.ts';
import { engineFacts, guestAgent, hostKind } from './support.ts';

const kind = hostKind();
const engine = await engineFacts();
const PROFILE = 'containerlabs-labhost';
const PROFILE_FILE = `/etc/apparmor.d/${PROFILE}`;
const LOAD = 'sudo apparmor_parser -r labs/apparmor/containerlabs-labhost';

/** Starts the server and waits for it to exit by itself (a refusal), or gives up. */
function serverExit(env: Record<string, string>): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['server/src/main.ts'], {
      cwd: ROOT,
      env: { ...process.env, HOST: '127.0.0.1', PORT: '0', CL_DRAIN_GRACE: '0', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (out += d));
    const timer = setTimeout(() => {
      p.kill('SIGTERM');
      reject(new Error(`the server kept running (it should have refused to start):\n${out}`));
    }, scaled(30_000));
    p.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

/**
 * What the nested root may not do under our profile though the kernel alone would let it
 * (the local-mode test below runs the same commands unconfined: they succeed there). The
 * mount refusals are in the audit log; the /proc/sys write is one of the profile's
 * explicit `deny` rules, which AppArmor does not log.
 */
const REFUSED: [cmd: string, audit: RegExp | undefined][] = [
  ['mount --rbind /proc /mnt && umount -R /mnt', /operation="mount".*srcname="\/proc\/"/],
  ['mount -t devpts devpts /mnt && umount /mnt', /operation="mount".*fstype="devpts"/],
  ['mount --make-rshared / && mount --make-rprivate /', /operation="mount".*flags="rw, rshared"/],
  ['echo 4096 > /proc/sys/kernel/shmmni', undefined],
];

/** Audit records of AppArmor refusals by our profile, from the guest's kernel log. */
async function denials(): Promise<string[]> {
  const log = await guestAgent().sh('dmesg');
  return log.split('\n').filter((l) => l.includes('apparmor="DENIED"') && l.includes(`profile="${PROFILE}"`));
}

if (kind === 'rootful') {
  describe('AppArmor on the rootful host', () => {
    before(() => {
      assert.equal(engine.apparmor, true, 'the rootful host applies AppArmor');
    });

    test('our profile is loaded at boot, in enforce mode', async () => {
      const loaded = await guestAgent().sh('cat /sys/kernel/security/apparmor/profiles');
      assert.match(loaded, new RegExp(`^${PROFILE} \\(enforce\\)$`, 'm'));
    });

    describe('open mode, profile loaded', () => {
      let srv: Awaited<ReturnType<typeof startServer>>;
      let s: Awaited<ReturnType<typeof createSession>>;
      let host: TermClient;
      let box: TermClient;
      before(async () => {
        srv = await startServer({ CL_INSTANCE: `hosts-apparmor-${process.pid}`, CL_POOL_SIZE: '0' });
        s = await createSession(srv.base, 'namespaces');
        host = await TermClient.open(srv.base, s, 'host');
        box = await TermClient.open(srv.base, s, 'container');
        await host.waitFor(/\$ $/m);
        await box.waitFor(/# $/m);
      });
      after(async () => {
        await host?.close();
        await box?.close();
        if (s) await deleteSession(srv.base, s);
        await srv?.stop();
      });

      test('lab hosts and their nested containers run under our profile, enforced', async () => {
        assert.equal((await host.exec('cat /proc/self/attr/current')).trim(), `${PROFILE} (enforce)`);
        assert.equal((await box.exec('cat /proc/self/attr/current')).trim(), `${PROFILE} (enforce)`);
        assert.equal((await host.exec('cat /proc/1/attr/current')).trim(), `${PROFILE} (enforce)`);
        assert.match(srv.logs(), new RegExp(`AppArmor profile ${PROFILE} \\(enforce\\)`));
      });

      test('what the nested root may do: the lessons’ mounts, binds among scratch folders', async () => {
        assert.equal((await box.exec('findmnt -no PROPAGATION /')).trim(), 'private');
        assert.match(
          await box.exec('mount -t tmpfs lesson4 /media && findmnt -no FSTYPE /media'),
          /^tmpfs$/m,
        );
        assert.equal(
          (await box.exec('umount /media && mount --bind /tmp /mnt && umount /mnt && echo ok')).trim(),
          'ok',
        );
      });

      test('what it may not, though the kernel alone would let it: AppArmor says no, in the audit log', async () => {
        const before = (await denials()).length;
        for (const [cmd] of REFUSED) {
          assert.match(
            await box.exec(`${cmd} 2>&1; echo "rc=$?"`),
            /(denied|failed|read-only)[\s\S]*rc=[1-9]/i,
            cmd,
          );
        }
        const seen = (await denials()).slice(before);
        for (const [cmd, audit] of REFUSED) {
          if (!audit) continue;
          assert.ok(
            seen.some((l) => audit.test(l)),
            `no AppArmor denial for ${cmd}; new denials:\n${seen.join('\n')}`,
          );
        }
      });
    });

    describe('the profile not loaded', () => {
      before(async () => {
        await guestAgent().sh(`apparmor_parser -R ${PROFILE_FILE}`);
        assert.doesNotMatch(
          await guestAgent().sh('cat /sys/kernel/security/apparmor/profiles'),
          new RegExp(PROFILE),
        );
      });
      after(async () => {
        await guestAgent().sh(`apparmor_parser -r ${PROFILE_FILE}`);
      });

      for (const mode of ['open', 'code'] as const) {
        test(`${mode} mode refuses to start, and says how to load the profile`, async () => {
          const r = await serverExit({
            CL_MODE: mode,
            CL_ACCESS_CODE: 'spring-2026_x',
            CL_INSTANCE: `hosts-apparmor-refuse-${process.pid}`,
          });
          assert.notEqual(r.code, 0);
          assert.ok(r.out.includes(LOAD), r.out);
          assert.match(r.out, new RegExp(`${PROFILE}.*not loaded`));
          assert.doesNotMatch(r.out, /Container Labs at http/, 'it never listened');
        });
      }

      test('local mode starts, runs lab hosts unconfined, and says so', async () => {
        const srv = await startServer({
          CL_MODE: 'local',
          CL_INSTANCE: `hosts-apparmor-local-${process.pid}`,
          CL_POOL_SIZE: '0',
        });
        try {
          assert.match(srv.logs(), /unconfined/);
          assert.ok(srv.logs().includes(LOAD), srv.logs());
          const token = /\?access=([\w-]+)/.exec(srv.logs())?.[1];
          assert.ok(token, srv.logs());
          const headers = { 'x-access-token': token };
          const s = await createSession(srv.base, 'processes', headers);
          const box = await TermClient.open(srv.base, s, 'container', { headers });
          await box.waitFor(/# $/m);
          assert.equal((await box.exec('cat /proc/self/attr/current')).trim(), 'unconfined');
          // Unconfined, the kernel lets the nested root do what our profile refuses.
          for (const [cmd] of REFUSED) assert.match(await box.exec(`${cmd} 2>&1; echo "rc=$?"`), /rc=0/, cmd);
          await box.close();
        } finally {
          await srv.stop();
        }
      });
    });
  });
} else {
  describe('AppArmor on the rootless host', () => {
    test('the engine applies none: the server starts in open mode and says so', async () => {
      assert.equal(engine.apparmor, false, 'a rootless engine applies no AppArmor');
      const srv = await startServer({ CL_INSTANCE: `hosts-apparmor-${process.pid}`, CL_POOL_SIZE: '0' });
      try {
        assert.match(srv.logs(), /applies no AppArmor/);
        const s = await createSession(srv.base, 'processes');
        const host = await TermClient.open(srv.base, s, 'host');
        await host.waitFor(/\$ $/m);
        // The kernel has AppArmor; the engine puts no profile on its containers, which keep
        // runc's own, shipped by Debian 13 in unconfined mode.
        const current = (await host.exec('cat /proc/self/attr/current')).trim();
        console.log(`rootless lab host: /proc/self/attr/current = ${current}`);
        assert.match(current, /^(unconfined|\S+ \(unconfined\))$/);
        await host.close();
      } finally {
        await srv.stop();
      }
    });
  });
}
