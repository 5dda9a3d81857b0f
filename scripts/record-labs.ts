/**
 * Records real lab sessions for the static site, one per `<Lab>` of a lesson:
 * `public/recordings/<lesson>/<lab>-<terminal>.cast` (asciicast v2), played by that lab
 * block when there is no server or no container engine (src/components/Lab.astro).
 *
 * The script is the lesson itself: every runnable block of the lab block, in page order,
 * from the same index the lessons test runs (src/plugins/run-block-index.ts), typed key by
 * key into its terminal(s) of a real session (tests/integration/lessons-support.ts), every
 * output frame kept with its time. So a recording shows exactly what the lesson asks the
 * reader to run, and is re-made, not edited, when a lesson changes. Each block starts with
 * a marker event (`[t, "m", "block N: …"]`). All terminals of a lab block share one clock
 * (same `timestamp` in every header), so the player replays them in step. A block whose
 * output does not match its `expect=` stops that lab block (nothing is written for it):
 * a recording must not contradict its lesson.
 *
 *   node scripts/record-labs.ts                                # every lab block of every lesson
 *   node scripts/record-labs.ts 03-a-container-is-a-process    # some lessons
 *   node scripts/record-labs.ts --server http://127.0.0.1:4321 # a running server instead of our own
 *
 * Needs a Docker engine and the lab images (`npm run images`). Never hand-edit a cast:
 * recordings must come from real runs.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadLabs } from '../labs/load.ts';
import type { LabDef } from '../labs/schema.ts';
import { type LabBlock, labBlocks, runBlockIndex } from '../src/plugins/run-block-index.ts';
import { chooseTabs, LabShells, runsHere } from '../tests/integration/lessons-support.ts';
import {
  createSession,
  deleteSession,
  ROOT,
  type RunningServer,
  startServer,
} from '../tests/support/server.ts';

const COLS = 80;
const ROWS = 24;
export const RECORDINGS = join(ROOT, 'public', 'recordings');

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

type CastEvent = [number, 'o' | 'm', string];

/** Records one lab block; returns its files, or throws (writing nothing) if a block contradicts its expect=. */
async function recordLabBlock(base: string, g: LabBlock, lab: LabDef): Promise<string[]> {
  const session = await createSession(base, g.lab);
  const events = new Map<string, CastEvent[]>(lab.terminals.map((t) => [t.name, []]));
  let t0 = performance.now();
  const at = () => Number(((performance.now() - t0) / 1000).toFixed(6));
  const shells = new LabShells(base, session, {
    cols: COLS,
    rows: ROWS,
    onOutput: (name, data) => events.get(name)?.push([at(), 'o', data]),
    keyDelay: () => 25 + Math.random() * 35,
  });
  const timestamp = Math.floor(Date.now() / 1000);
  const problems: string[] = [];
  try {
    const chosen = await chooseTabs(g.blocks, { base, session });
    t0 = performance.now();
    await shells.openAll();
    await sleep(800);
    for (const b of g.blocks) {
      if (!runsHere(b, chosen)) {
        console.log(`  - block ${b.order}: not here (tab "${b.tab?.label}")`);
        continue;
      }
      const first = b.code.split('\n')[0] ?? '';
      for (const name of shells.targets(b.target)) {
        events.get(name)?.push([at(), 'm', `block ${b.order}: ${first}`]);
        const run = await shells.run(name, b.code);
        const where = `${b.file}:${b.line} (block ${b.order}) in "${name}"`;
        if (run.timedOut) problems.push(`${where}: ${run.timedOut}`);
        else if (b.expect === undefined) console.warn(`  ! ${where}: no expect= to check the output against`);
        else if (!new RegExp(b.expect, 'm').test(run.output))
          problems.push(`${where}: output does not match expect="${b.expect}":\n${run.output.trimEnd()}`);
        console.log(
          `  ${name}$ ${first}${b.code.includes('\n') ? ' …' : ''}${run.exited ? ' (the shell exited)' : ''}`,
        );
        await sleep(700);
      }
    }
    await sleep(800);
  } finally {
    await shells.close();
    await deleteSession(base, session).catch(() => {});
  }
  if (problems.length > 0) throw new Error(`${g.lesson} <Lab id="${g.lab}">:\n${problems.join('\n')}`);

  const dir = join(RECORDINGS, g.lesson);
  await mkdir(dir, { recursive: true });
  const files: string[] = [];
  for (const t of lab.terminals) {
    const header = {
      version: 2,
      width: COLS,
      height: ROWS,
      timestamp,
      idle_time_limit: 1.5,
      title: `${g.lesson}, ${lab.title}: ${t.title}`,
      env: { TERM: 'xterm-256color', SHELL: '/bin/bash' },
    };
    const lines = [JSON.stringify(header), ...(events.get(t.name) ?? []).map((e) => JSON.stringify(e))];
    const file = join(dir, `${g.lab}-${t.name}.cast`);
    await writeFile(file, `${lines.join('\n')}\n`);
    files.push(file);
  }
  return files;
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    options: { server: { type: 'string' } },
    allowPositionals: true,
  });
  const labs = await loadLabs(join(ROOT, 'labs'));
  const groups = labBlocks(await runBlockIndex({ root: ROOT, labs }));
  const unknown = positionals.filter((p) => !groups.some((g) => g.lesson === p));
  if (unknown.length > 0)
    throw new Error(
      `no lab block in ${unknown.join(', ')}; lessons with one: ${[...new Set(groups.map((g) => g.lesson))].join(', ')}`,
    );
  const wanted = groups.filter((g) => positionals.length === 0 || positionals.includes(g.lesson));

  let server: RunningServer | undefined;
  let base = values.server?.replace(/\/$/, '');
  if (!base) {
    server = await startServer({
      CL_INSTANCE: `recorder-${process.pid}`,
      CL_POOL_SIZE: '0',
      LOG_LEVEL: 'warn',
    });
    base = server.base;
    console.log(`started a server at ${base}`);
  }
  let failed = 0;
  try {
    const health = (await (await fetch(`${base}/api/v1/health`)).json()) as {
      labs?: { available?: boolean };
    };
    if (!health.labs?.available)
      throw new Error('the server cannot reach a container engine; recordings need live labs');
    for (const g of wanted) {
      const lab = labs.find((l) => l.id === g.lab);
      if (!lab) throw new Error(`no lab "${g.lab}"`);
      console.log(`recording ${g.lesson} <Lab id="${g.lab}"> (${g.blocks.length} blocks)`);
      try {
        for (const f of await recordLabBlock(base, g, lab)) console.log(`  wrote ${f}`);
      } catch (err) {
        failed++;
        console.error(`  FAILED, nothing written: ${(err as Error).message}`);
      }
    }
  } finally {
    await server?.stop();
  }
  if (failed > 0) throw new Error(`${failed} lab block(s) not recorded`);
}

if (import.meta.main) {
  main().catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exitCode = 1;
  });
}
