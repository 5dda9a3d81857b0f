/**
 * The `processes` lab against a real Docker engine: `ps -ef` inside shows the app as
 * PID 1; on the lab host the same process has another PID, its parent is the runtime
 * (unshare) and NSpid maps one to the other. DELETE leaves no container behind.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { useLab } from '../support/fixtures.ts';
import { sessionContainers } from '../support/server.ts';

/** Parse procps `ps -ef` output into rows. */
function psRows(text: string) {
  const rows: { uid: string; pid: number; ppid: number; cmd: string }[] = [];
  let inTable = false;
  for (const line of text.split('\n')) {
    if (/^UID\s+PID\s+PPID\s+C\s+STIME\s+TTY\s+TIME\s+CMD/.test(line)) {
      inTable = true;
      continue;
    }
    if (!inTable) continue;
    const m = /^(\S+)\s+(\d+)\s+(\d+)\s+\d+\s+\S+\s+\S+\s+\S+\s+(.*)$/.exec(line);
    if (!m) {
      if (rows.length) break;
      continue;
    }
    rows.push({ uid: m[1]!, pid: Number(m[2]), ppid: Number(m[3]), cmd: m[4]!.trim() });
  }
  return rows;
}

describe('processes lab (real engine)', () => {
  const lab = useLab('it-processes', 'processes');

  test('ps -ef: the app is PID 1 inside and another PID, child of unshare, outside', async () => {
    const inside = await lab.terminal(lab.s, 'container', { prompt: /root@box:.*# $/m });
    const host = await lab.terminal(lab.s, 'host', { prompt: /reader@labhost:.*\$ $/m });

    const inOut = await inside.run('ps -ef', /CMD[\s\S]*# $/);
    const inRows = psRows(inOut);
    const app = inRows.find((r) => r.pid === 1);
    assert.ok(app, `PID 1 inside:\n${inOut}`);
    assert.match(app.cmd, /httpd/);
    assert.equal(app.uid, 'root', 'the app runs as root inside (user namespace)');

    const hostOut = await host.run('ps -ef', /CMD[\s\S]*\$ $/);
    const hostRows = psRows(hostOut);
    const outside = hostRows.find((r) => /httpd/.test(r.cmd));
    assert.ok(outside, `httpd on the host:\n${hostOut}`);
    assert.notEqual(outside.pid, 1);
    assert.equal(outside.uid, 'reader', 'outside, the same process belongs to the unprivileged reader');
    const parent = hostRows.find((r) => r.pid === outside.ppid);
    assert.ok(parent && /unshare/.test(parent.cmd), `parent of httpd is unshare:\n${hostOut}`);

    const nspid = await host.run(`grep NSpid /proc/${outside.pid}/status`, /NSpid:\s+\d+\s+\d+/);
    const m = /NSpid:\s+(\d+)\s+(\d+)/.exec(nspid)!;
    assert.equal(Number(m[1]), outside.pid);
    assert.equal(Number(m[2]), 1, 'NSpid maps the host PID to PID 1 inside');

    const hn = await inside.run('hostname', /\n(\S+)\n/);
    assert.match(hn, /\nbox\n/);
    await inside.close();
    await host.close();
  });

  test('reconnecting gets the same shell back', async () => {
    const a = await lab.terminal(lab.s, 'host', { prompt: false });
    await a.ready();
    await a.run('export LAB_MARK=4242', /\$ $/);
    await a.close();
    const b = await lab.terminal(lab.s, 'host', { prompt: false });
    const attached = await b.ready();
    assert.equal(attached.replay, true, 'the recent screen is replayed');
    const out = await b.run('echo "mark=$LAB_MARK"', /mark=\d+/);
    assert.match(out, /mark=4242/);
    await b.close();
  });

  test('DELETE removes the lab host before answering 204', async () => {
    const s = lab.s;
    assert.equal((await sessionContainers(s.id)).length, 1);
    await lab.endAndCheck();
    const r = await fetch(`${lab.base}/api/v1/sessions/${s.id}`, {
      headers: { authorization: `Bearer ${s.token}` },
    });
    assert.equal(r.status, 404);
  });
});
