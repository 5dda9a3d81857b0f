/**
 * The admin CLI (scripts/admin.ts) and API against the real server and engine: list
 * shows each session's lab, client, age and the lab host's memory and pids; end removes
 * one; without CL_ADMIN_TOKEN only direct loopback requests pass, with it only the token.
 * Tokens never appear in the output.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { withServer } from '../support/fixtures.ts';
import { createSession, labContainers } from '../support/server.ts';
import { admin } from './support.ts';

describe('admin CLI and API (real engine)', () => {
  test('list and end with CL_ADMIN_TOKEN', async () => {
    const instance = `deploy-admin-${process.pid}`;
    const token = 'admin-token-abcdefghijklmnop';
    await withServer({ CL_INSTANCE: instance, CL_POOL_SIZE: '0', CL_ADMIN_TOKEN: token }, async (srv) => {
      const url = ['--url', srv.base];
      const a = await createSession(srv.base, 'processes');
      const b = await createSession(srv.base, 'cgroups');

      const refused = await admin(['list', ...url]);
      assert.equal(refused.code, 1);
      assert.match(refused.stderr, /401: The admin API needs `Authorization: Bearer <CL_ADMIN_TOKEN>`/);
      const wrong = await admin(['list', ...url], { CL_ADMIN_TOKEN: 'wrong-token-abcdefghijklmnop' });
      assert.equal(wrong.code, 1);

      const list = await admin(['list', ...url], { CL_ADMIN_TOKEN: token });
      assert.equal(list.code, 0, list.stderr);
      assert.match(list.stdout, /SESSION\s+LAB\s+CLIENT\s+AGE\s+IDLE\s+TERMS\s+MEM MiB\s+PIDS/);
      assert.match(list.stdout, new RegExp(`${a.id}\\s+processes\\s+127\\.0\\.0\\.1\\s+\\d+s`));
      assert.match(list.stdout, new RegExp(`${b.id}\\s+cgroups`));
      assert.match(
        list.stdout,
        /\d+\.\d\/128\.0\s+\d+\/100/,
        'memory and pids of each lab host, with limits',
      );
      assert.match(list.stdout, /2 session\(s\)/);

      const json = JSON.parse((await admin(['list', '--json', ...url], { CL_ADMIN_TOKEN: token })).stdout);
      const row = json.sessions.find((x: { id: string }) => x.id === a.id);
      assert.ok(row.resources.memoryBytes > 0);
      assert.equal(row.resources.memoryLimitBytes, 128 * 1024 * 1024);
      assert.ok(row.resources.pids >= 2 && row.resources.pids <= 100);
      assert.equal(row.resources.pidsLimit, 100);
      for (const out of [list.stdout, JSON.stringify(json)]) {
        assert.ok(!out.includes(a.token) && !out.includes(b.token), 'no session token in the output');
        for (const c of await labContainers(instance))
          assert.ok(!out.includes(c.Id.slice(0, 12)), 'no container id');
      }

      const end = await admin(['end', a.id, ...url], { CL_ADMIN_TOKEN: token });
      assert.equal(end.code, 0, end.stderr);
      assert.match(end.stdout, /ended/);
      const gone = await fetch(`${srv.base}/api/v1/sessions/${a.id}`, {
        headers: { authorization: `Bearer ${a.token}` },
      });
      assert.equal(gone.status, 404, 'the session is gone');
      const left = await labContainers(instance);
      assert.equal(left.length, 1);
      assert.equal(
        left[0]!.Labels['containerlabs.session'],
        b.id,
        "only the other session's lab host is left",
      );
      const again = await admin(['end', a.id, ...url], { CL_ADMIN_TOKEN: token });
      assert.equal(again.code, 1);
      assert.match(again.stderr, /404/);
      assert.match(srv.logs(), /"reason":"admin"/);
      assert.ok(!srv.logs().includes(token), 'the admin token is not logged');
    });
  });

  test('without CL_ADMIN_TOKEN: loopback only, and not through a proxy', async () => {
    const env = {
      DOCKER_HOST: 'unix:///nonexistent/docker.sock',
      CL_INSTANCE: `deploy-admin-open-${process.pid}`,
    };
    await withServer(env, async (srv) => {
      const list = await admin(['list', '--url', srv.base]);
      assert.equal(list.code, 0, list.stderr);
      assert.match(list.stdout, /no live sessions/);
      const proxied = await fetch(`${srv.base}/api/v1/admin/sessions`, {
        headers: { 'x-forwarded-for': '198.51.100.7' },
      });
      assert.equal(proxied.status, 403);
      const usage = await admin(['frobnicate']);
      assert.equal(usage.code, 2);
      assert.match(usage.stderr, /usage: npm run admin/);
    });
  });
});
