/**
 * The test host is the host it claims to be: what its engine reports, and what our
 * server reads from it. If this fails, every other result of the host suite is about
 * some other kind of host.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { startServer } from '../support/server.ts';
import { engineFacts, hostKind } from './support.ts';

const kind = hostKind();

describe(`the ${kind} test host`, () => {
  test('its engine: a current Docker, cgroup v2 with the systemd driver, seccomp', async () => {
    const e = await engineFacts();
    console.log(
      `engine: docker ${e.version} (API ${e.apiVersion}), cgroup v${e.cgroupVersion} ${e.cgroupDriver}, ${e.securityOptions.join(' ')}`,
    );
    assert.ok(Number(e.apiVersion) > 1.41, `API ${e.apiVersion}: newer than the CI machine's 1.41`);
    assert.equal(e.cgroupVersion, '2');
    assert.equal(e.cgroupDriver, 'systemd');
    assert.ok(e.securityOptions.some((o) => o.startsWith('name=seccomp')));
    if (kind === 'rootful') {
      assert.equal(e.rootless, false);
      assert.equal(e.apparmor, true, 'the rootful host applies AppArmor');
    } else {
      assert.equal(e.rootless, true, 'the engine runs rootless');
    }
  });

  test('our server reads the same from it', async () => {
    const srv = await startServer({ CL_INSTANCE: `hosts-engine-${process.pid}`, CL_POOL_SIZE: '0' });
    try {
      const st = (await (await fetch(`${srv.base}/api/v1/admin/status`)).json()) as {
        engine: { reachable: boolean; cgroupVersion?: string; apparmor?: boolean; rootless?: boolean };
      };
      assert.equal(st.engine.reachable, true, JSON.stringify(st.engine));
      assert.equal(st.engine.cgroupVersion, '2');
      assert.equal(st.engine.rootless, kind === 'rootless');
      assert.equal(st.engine.apparmor, kind === 'rootful');
    } finally {
      await srv.stop();
    }
  });
});
