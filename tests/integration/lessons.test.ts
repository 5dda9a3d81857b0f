/**
 * Every runnable block of every lesson, run against its real lab (real server, real
 * engine), so a lesson and its lab cannot drift apart. For each `<Lab>` of each lesson,
 * one session: its blocks in page order, each in its `run=` terminal(s) as the Run button
 * types it, and each terminal's output must match the block's `expect=` (flag `m`). A block
 * without `expect=` fails ("add expect= to …"), with the output it gave, so the author can
 * write one. Blocks in a `<Tabs>` set run in the tab this lab host needs (lesson 5: its
 * cgroup version); the other tabs' blocks are reported as skipped, never as passed.
 *
 *   node --test tests/integration/lessons.test.ts
 *   LESSONS=03-a-container-is-a-process node --test tests/integration/lessons.test.ts   # some lessons
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { loadLabs } from '../../labs/load.ts';
import { labBlocks, type RunBlock, runBlockIndex } from '../../src/plugins/run-block-index.ts';
import {
  createSession,
  deleteSession,
  ROOT,
  type RunningServer,
  type SessionInfo,
  startServer,
} from '../support/server.ts';
import { type BlockRun, chooseTabs, LabShells, runsHere } from './lessons-support.ts';

const only = (process.env.LESSONS ?? '').split(',').filter(Boolean);
const blocks = await runBlockIndex({ root: ROOT, labs: await loadLabs(join(ROOT, 'labs')) });
const groups = labBlocks(blocks).filter((g) => only.length === 0 || only.includes(g.lesson));

function describeBlock(b: RunBlock): string {
  const first = b.code.split('\n')[0] ?? '';
  return `block ${b.order} (${b.file}:${b.line}, run=${b.target}): ${first.length > 60 ? `${first.slice(0, 60)}…` : first}`;
}

function report(runs: BlockRun[]): string {
  return runs
    .map(
      (r) =>
        `--- output in "${r.terminal}"${r.exited ? ' (the shell exited)' : ''}${r.timedOut ? ` (${r.timedOut.split('\n')[0]})` : ''}:\n${r.output.trimEnd()}`,
    )
    .join('\n');
}

describe('lessons against their labs (real engine)', () => {
  let srv: RunningServer;
  const instance = `it-lessons-${process.pid}`;

  before(async () => {
    assert.ok(groups.length > 0, `no lab blocks${only.length ? ` in LESSONS=${only.join(',')}` : ''}`);
    srv = await startServer({
      CL_INSTANCE: instance,
      CL_POOL_SIZE: '0',
      CL_CREATE_PER_MINUTE: '100',
      LOG_LEVEL: 'warn',
    });
  });
  after(async () => {
    await srv?.stop();
  });

  for (const g of groups) {
    test(`${g.lesson}: <Lab id="${g.lab}">, ${g.blocks.length} blocks`, {
      timeout: 10 * 60_000,
    }, async (t) => {
      let s: SessionInfo | undefined;
      let shells: LabShells | undefined;
      try {
        s = await createSession(srv.base, g.lab);
        shells = new LabShells(srv.base, s);
        const chosen = await chooseTabs(g.blocks, { base: srv.base, session: s });
        for (const b of g.blocks) {
          if (!runsHere(b, chosen)) {
            await t.test(describeBlock(b), {
              skip: `for the tab "${b.tab?.label}"; this lab host needs "${chosen.get(b.tab?.set ?? 0)}"`,
            });
            continue;
          }
          const sh = shells;
          await t.test(describeBlock(b), async () => {
            const runs: BlockRun[] = [];
            for (const name of sh.targets(b.target)) runs.push(await sh.run(name, b.code));
            const stuck = runs.filter((r) => r.timedOut);
            if (stuck.length > 0)
              assert.fail(`${b.file}:${b.line}: the shell did not come back\n${report(stuck)}`);
            if (b.expect === undefined)
              assert.fail(
                `add expect= to ${b.file}:${b.line} (lesson ${b.lesson}, block ${b.order}): a regex its output must match\n${report(runs)}`,
              );
            const re = new RegExp(b.expect, 'm');
            const wrong = runs.filter((r) => !re.test(r.output));
            if (wrong.length > 0)
              assert.fail(
                `${b.file}:${b.line} (lesson ${b.lesson}, block ${b.order}): output does not match expect="${b.expect}"\n${report(wrong)}`,
              );
          });
        }
      } finally {
        await shells?.close();
        if (s) await deleteSession(srv.base, s);
      }
    });
  }
});
