/**
 * The in-browser labs in real Chromium, against the built site served as plain files (no
 * lab server at all): each browser lab starts in the tab (vm/README.md), `ps -ef` inside
 * and on the host show the PID mapping, a step check passes, the networking lab's ping
 * crosses its bridge, and the cgroups lab's fork limit and OOM kill show as on the server.
 * Times of each start are printed (not asserted).
 *
 * Needs the VM build (`npm run build` on a Debian machine runs node vm/build.ts first; a
 * machine without apt cannot make it: these tests then fail and say so).
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Locator, Page } from 'playwright-core';
import type {} from '../../src/lib/lab-controller.ts';
import { readCurrent } from '../../vm/lib/manifest.ts';
import { type StaticServer, serveStatic } from '../site/static-server.ts';
import {
  lessonWithLab,
  ROOT,
  runIn,
  termText,
  typeIn,
  useSiteAndBrowser,
  waitForPrompt,
  waitForState,
  waitForText,
} from './support.ts';

const bed = useSiteAndBrowser();
let site: StaticServer;

before(() => {
  const cur = readCurrent(ROOT);
  if ('reason' in cur)
    assert.fail(
      `no in-browser VM to test: ${cur.reason}. Run \`npm run build\` (or node vm/build.ts) on a Debian machine (./run.sh setup).`,
    );
});
before(async () => {
  site = await serveStatic(bed.site);
});
after(async () => {
  await site?.close();
});

/** The slow part is the emulated machine: generous bounds, only so a hang fails. */
const START_MS = 180_000;
const CMD_MS = 120_000;

/** `ps -ef` rows: { user, pid, ppid, cmd }. */
function psRows(text: string): { user: string; pid: number; ppid: number; cmd: string }[] {
  const rows = [];
  for (const line of text.split('\n')) {
    const m = /^(\S+)\s+(\d+)\s+(\d+)\s+\d+\s+\S+\s+\S+\s+\S+\s+(.*)$/.exec(line.trim());
    if (m) rows.push({ user: m[1]!, pid: Number(m[2]), ppid: Number(m[3]), cmd: m[4]! });
  }
  return rows;
}

function lastOutput(text: string, command: string): string {
  const lines = text.split('\n');
  for (let i = lines.length - 1; i >= 0; i--)
    if (/[$#] /.test(lines[i]!) && lines[i]!.endsWith(` ${command}`)) return lines.slice(i + 1).join('\n');
  return '';
}

async function runLong(page: Page, lab: string, terminal: string, command: string): Promise<string> {
  await typeIn(page, lab, terminal, `${command}\n`);
  const escaped = command.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return waitForText(page, lab, terminal, new RegExp(`${escaped}\\n[\\s\\S]*[$#] $`), CMD_MS);
}

/** Site path of the lesson with lab `lab`'s block, and its step check `check` if given. */
function lessonOf(lab: string, check?: string): string {
  if (!check) return lessonWithLab(bed.site, lab);
  for (const dir of readdirSync(bed.site, { withFileTypes: true })) {
    const f = path.join(bed.site, dir.name, 'index.html');
    if (dir.isDirectory() && existsSync(f)) {
      const html = readFileSync(f, 'utf8');
      if (html.includes(`data-lab="${lab}"`) && html.includes(`data-check="${check}"`))
        return `/${dir.name}/`;
    }
  }
  throw new Error(`no lesson has lab ${lab} and check ${check}`);
}

/** Opens the lesson of `lab` and starts it in the tab; returns the page and the seconds it took. */
async function startInBrowser(
  lab: string,
  check?: string,
): Promise<{ page: Page; seconds: number; requests: string[] }> {
  // Wide enough that `ps -ef` (which cuts lines at the terminal's width) shows lab-init whole.
  const page = await bed.browser.newPage({ viewport: { width: 1920, height: 900 } });
  const requests: string[] = [];
  page.on('request', (r) => requests.push(new URL(r.url()).pathname));
  page.on('pageerror', (e) => console.log(`page error: ${e.message}`));
  await page.goto(site.url(lessonOf(lab, check)), { waitUntil: 'networkidle' });
  const root = page.locator(`[data-lab="${lab}"]`).first();
  const vmButton = root.locator('[data-action="start-vm"]');
  const t0 = performance.now();
  if ((await vmButton.count()) > 0) await vmButton.click();
  else await root.locator('[data-action="start"]').click();
  await waitForState(page, lab, 'ready', START_MS);
  const terms = await root
    .locator('[data-terminal]')
    .evaluateAll((els) => els.map((e) => (e as HTMLElement).dataset.terminal!));
  for (const t of terms) await waitForPrompt(page, lab, t, START_MS);
  const seconds = (performance.now() - t0) / 1000;
  console.log(`# ${lab}: Start → both prompts in ${seconds.toFixed(1)} s (machine shared, noisy)`);
  return { page, seconds, requests };
}

/** Presses a step check's button and waits until the page has judged it (passed or not). */
async function pressCheck(page: Page, check: Locator): Promise<void> {
  await check.locator('[data-check-run]').click();
  await waitFor(
    page,
    () => check.getAttribute('data-passed'),
    (v) => v !== null,
    CMD_MS,
  );
}
describe('in-browser labs: static files, no lab server', () => {
  test('processes: both shells, the PID mapping, a step check, and nothing asked of a server', async () => {
    const { page, requests } = await startInBrowser('processes', 'sleep-host-pid');
    assert.equal(await page.locator('[data-lab="processes"]').first().getAttribute('data-mode'), 'vm');
    const inside = psRows(lastOutput(await runLong(page, 'processes', 'container', 'ps -ef'), 'ps -ef'));
    const app = inside.find((r) => r.pid === 1);
    assert.match(app?.cmd ?? '', /httpd/, `PID 1 inside is the app: ${JSON.stringify(inside)}`);
    assert.equal(app?.user, 'root');
    const t1 = performance.now();
    const host = psRows(lastOutput(await runLong(page, 'processes', 'host', 'ps -ef'), 'ps -ef'));
    console.log(`# processes: ps -ef on the host took ${((performance.now() - t1) / 1000).toFixed(2)} s`);
    assert.match(host.find((r) => r.pid === 1)?.cmd ?? '', /lab-init/, 'PID 1 on the lab host is lab-init');
    const hostApp = host.find((r) => /httpd/.test(r.cmd));
    assert.ok(hostApp && hostApp.pid !== 1, 'the app has another PID on the host');
    assert.equal(hostApp.user, 'reader');
    assert.match(host.find((r) => r.pid === hostApp.ppid)?.cmd ?? '', /^unshare /, 'its parent is unshare');
    const status = await runIn(page, 'processes', 'host', `grep NSpid /proc/${hostApp.pid}/status`);
    assert.match(status, new RegExp(`NSpid:\\s+${hostApp.pid}\\s+1\\b`));

    // The step check: sleep inside, its host PID typed in, judged in the page.
    await runIn(page, 'processes', 'container', 'sleep 1000 &');
    // On an emulated CPU the background sleep may not have exec'd yet: look again, a few times.
    let sleeper: ReturnType<typeof psRows>[number] | undefined;
    for (let i = 0; i < 5 && !sleeper; i++) {
      if (i > 0) await page.waitForTimeout(1000);
      sleeper = psRows(lastOutput(await runLong(page, 'processes', 'host', 'ps -ef'), 'ps -ef')).find(
        (r) => r.cmd === 'sleep 1000',
      );
    }
    assert.ok(sleeper, 'the sleep shows on the host');
    const check = page.locator('[data-check="sleep-host-pid"]').first();
    await check.locator('[data-check-answer]').fill(String(sleeper.pid));
    await pressCheck(page, check);
    assert.match((await check.locator('[data-check-result]').textContent()) ?? '', /Passed/);

    assert.ok(!requests.some((p) => p.startsWith('/api/v1/sessions')), 'no session was asked of a server');
    assert.ok(
      requests.some((p) => /\/vm\/processes\.[0-9a-f]+\.state\.zst$/.test(p)),
      'the state came from the site',
    );
    await page.close();
  });

  test('namespaces: the kernel view reads the guest (processes and namespaces tabs)', async () => {
    const { page } = await startInBrowser('namespaces');
    const kv = page.locator('[data-lab="namespaces"] details[data-kernel-view]').first();
    await kv.locator('summary').click();
    await waitFor(
      page,
      () => kv.locator('[data-kv-panel="processes"] table').count(),
      (n) => n > 0,
      CMD_MS,
    );
    const table = (await kv.locator('[data-kv-panel="processes"] table').textContent()) ?? '';
    assert.match(table, /lab-init/);
    assert.match(table, /box-app|httpd/);
    const host = await runIn(page, 'namespaces', 'host', 'hostname');
    assert.match(host, /labhost/);
    const inside = await runIn(page, 'namespaces', 'container', 'hostname; ipcs -m | grep -c 0x');
    assert.match(inside, /box\n1\n/);
    await page.close();
  });

  test('cgroups: the fork limit refuses forks and the OOM killer kills, as on the server', async () => {
    const { page } = await startInBrowser('cgroups', 'oom-kill');
    // The emulated CPU forks slowly: 10 s reach the pids limit where the server's 3 s do.
    const bomb = lastOutput(await runLong(page, 'cgroups', 'host', 'fork-bomb 10'), 'fork-bomb 10');
    const refused = Number(/the kernel refused (\d+) forks/.exec(bomb)?.[1]);
    assert.ok(refused > 0, `the pids limit refused forks:\n${bomb}`);
    const hog = lastOutput(await runLong(page, 'cgroups', 'container', 'mem-hog 100'), 'mem-hog 100');
    assert.match(hog, /tail was killed by SIGKILL/, hog);
    for (const id of ['oom-kill', 'pids-limit']) {
      const check = page.locator(`[data-check="${id}"]`).first();
      await pressCheck(page, check);
      assert.match((await check.locator('[data-check-result]').textContent()) ?? '', /Passed/, id);
    }
    // Seen once in four runs: the host terminal's shell died in the OOM as well (a second kill
    // while tail, on the emulated CPU, was slow to exit, is the likely cause; not confirmed).
    // The page then says so, and Enter gives a new shell, as it tells the reader.
    if ((await termText(page, 'cgroups', 'host')).includes('The shell exited')) {
      console.log('# cgroups: the host shell was OOM-killed too; pressing Enter for a new one');
      await typeIn(page, 'cgroups', 'host', '\n');
      await waitForPrompt(page, 'cgroups', 'host', START_MS);
    }
    const info = await runLong(page, 'cgroups', 'host', 'cgroup-info');
    assert.match(lastOutput(info, 'cgroup-info'), /OOM kills\s+[1-9]/);
    await page.close();
  });

  test('networking: two namespaces, a veth pair each, a bridge, and a ping across it', async () => {
    const { page } = await startInBrowser('networking', 'ping-across');
    // Each command with its prompt fits in 80 columns: on a loaded machine the guest may not
    // have the terminal's width yet when the first one is typed, and readline's wrap at 80
    // would garble the echo this test reads back.
    const steps = [
      'ip netns add red; ip netns add blue',
      'ip link add veth-red type veth peer name vr-br',
      'ip link add veth-blue type veth peer name vb-br',
      'ip link set veth-red netns red',
      'ip link set veth-blue netns blue',
      'ip link add br0 type bridge; ip link set br0 up',
      'ip link set vr-br master br0 up',
      'ip link set vb-br master br0 up',
      'ip -n red addr add 10.0.0.1/24 dev veth-red',
      'ip -n red link set veth-red up',
      'ip -n blue addr add 10.0.0.2/24 dev veth-blue',
      'ip -n blue link set veth-blue up',
    ];
    for (const s of steps) await runLong(page, 'networking', 'host', s);
    const ping = lastOutput(
      await runLong(page, 'networking', 'host', 'ip netns exec red ping -c 3 10.0.0.2'),
      'ip netns exec red ping -c 3 10.0.0.2',
    );
    assert.match(ping, /3 packets transmitted, 3 (packets )?received/, ping);
    for (const id of ['bridge-up', 'ping-across']) {
      const check = page.locator(`[data-check="${id}"]`).first();
      assert.equal(await check.count(), 1, `the lesson has the ${id} check`);
      await pressCheck(page, check);
      assert.match((await check.locator('[data-check-result]').textContent()) ?? '', /Passed/, id);
    }
    await page.close();
  });
});

async function waitFor<T>(page: Page, read: () => Promise<T>, ok: (v: T) => boolean, ms: number): Promise<T> {
  const deadline = Date.now() + ms;
  let v = await read();
  while (!ok(v) && Date.now() < deadline) {
    await page.waitForTimeout(250);
    v = await read();
  }
  if (!ok(v)) throw new Error(`timed out; last value ${String(v)}`);
  return v;
}
