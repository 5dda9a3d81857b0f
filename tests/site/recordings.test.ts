/**
 * The recorded sessions of the built site against the lessons: every `<Lab>` block of every
 * lesson that has runnable blocks offers a recording for each of its terminals, the casts
 * parse and share one clock, and each recording contains every runnable block of that lab
 * block, in page order, typed into the block's terminal(s) (scripts/record-labs.ts marks
 * each block with an asciicast marker; the typed text follows it). Blocks of a `<Tabs>`
 * set: one tab's blocks, all of them. No recording is left that no lab block plays.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { loadAllLabs } from '../../labs/load.ts';
import { parseCast } from '../../src/lib/cast-player.ts';
import { labBlocks, type RunBlock, serverBlocks } from '../../src/plugins/run-block-index.ts';
import { plain } from '../support/server.ts';
import { attr, DIST, findAll, type Page, ROOT, readPage, useLessonPages } from './site.ts';

const site = useLessonPages();

/** What the reader sees typed, without spaces (readline may redraw a long line at the margin). */
const squash = (s: string) => s.replace(/\s+/g, '');

/** The cast's output split at its markers: label → text shown until the next marker. */
function segments(text: string): Map<string, string> {
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  const out = new Map<string, string>();
  let label: string | undefined;
  for (const line of lines.slice(1)) {
    const ev = JSON.parse(line) as [number, string, string];
    if (ev[1] === 'm') {
      label = /^block \d+/.exec(ev[2])?.[0];
      if (label) out.set(label, '');
    } else if (ev[1] === 'o' && label) out.set(label, (out.get(label) ?? '') + ev[2]);
  }
  return out;
}

function lessonOf(page: Page): string {
  return page.path.slice(site.base.length).replace(/^\/|\/$/g, '');
}

test('every lab block with runnable blocks has a recording of each of them, in order', async () => {
  const problems: string[] = [];
  let checked = 0;
  // Recordings are made on a lab server: a browser-only lab (networking) has none.
  const labs = await loadAllLabs(path.join(ROOT, 'labs'));
  for (const g of labBlocks(serverBlocks(site.index, labs))) {
    const page = site.pages.find((p) => lessonOf(p) === g.lesson);
    if (!page) {
      problems.push(`${g.lesson}: in the index, but no such page in dist/`);
      continue;
    }
    const section = findAll(
      readPage(page),
      (el) => attr(el, 'data-lab') === g.lab && attr(el, 'data-lab-block') !== undefined,
    )[0];
    if (!section) {
      problems.push(`${g.lesson}: no <Lab id="${g.lab}"> block on the built page`);
      continue;
    }
    const casts = new Map<string, string>();
    for (const fig of findAll(section, (el) => attr(el, 'data-terminal') !== undefined)) {
      const name = attr(fig, 'data-terminal') ?? '';
      const url = attr(fig, 'data-recording');
      const file = url && path.join(DIST, url.slice(site.base.length));
      if (!url || !file || !existsSync(file)) {
        problems.push(
          `${g.lesson} <Lab id="${g.lab}">, terminal "${name}": no recording (${url ?? 'none'}); run node scripts/record-labs.ts ${g.lesson}`,
        );
        continue;
      }
      casts.set(name, readFileSync(file, 'utf8'));
    }
    if (casts.size === 0) continue;
    const stamps = new Set([...casts.values()].map((c) => parseCast(c).header.timestamp));
    if (stamps.size !== 1)
      problems.push(`${g.lesson} <Lab id="${g.lab}">: the terminals were not recorded together`);
    const segs = new Map([...casts].map(([name, text]) => [name, segments(text)]));
    const names = [...casts.keys()];
    const recorded = (b: RunBlock) =>
      (b.target === 'both' ? names : [b.target]).map(
        (n) => [n, segs.get(n)?.get(`block ${b.order}`)] as const,
      );

    // A <Tabs> set: the recording follows one tab, all of whose blocks must be there.
    const tabsDone = new Set<number>();
    for (const b of g.blocks) {
      if (b.tab) {
        if (tabsDone.has(b.tab.set)) continue;
        tabsDone.add(b.tab.set);
        const set = g.blocks.filter((x) => x.tab?.set === b.tab?.set);
        const labels = [...new Set(set.map((x) => x.tab?.label))];
        const full = labels.filter((l) =>
          set.filter((x) => x.tab?.label === l).every((x) => recorded(x).every(([, s]) => s !== undefined)),
        );
        if (full.length === 0) {
          problems.push(
            `${b.file}:${b.line}: the recording follows none of the tabs ${labels.join(', ')} completely`,
          );
          continue;
        }
        for (const x of set.filter((y) => y.tab?.label === full[0]))
          checked += checkBlock(x, recorded(x), problems);
        continue;
      }
      checked += checkBlock(b, recorded(b), problems);
    }
  }
  assert.ok(checked > 0 || problems.length > 0, 'no runnable blocks in the index');
  assert.equal(problems.length, 0, `${problems.length} problem(s):\n${problems.join('\n')}`);
});

function checkBlock(
  b: RunBlock,
  segs: (readonly [string, string | undefined])[],
  problems: string[],
): number {
  for (const [name, seg] of segs) {
    if (seg === undefined) {
      problems.push(`${b.file}:${b.line} (block ${b.order}): not in the recording of "${name}"`);
      continue;
    }
    const shown = squash(plain(seg));
    let at = 0;
    for (const line of b.code.split('\n')) {
      const i = shown.indexOf(squash(line), at);
      if (i === -1) {
        problems.push(
          `${b.file}:${b.line} (block ${b.order}) in "${name}": the recording does not show ${JSON.stringify(line)}`,
        );
        break;
      }
      at = i + squash(line).length;
    }
  }
  return segs.length;
}

test('no recording is left that no lab block plays', () => {
  const dir = path.join(DIST, 'recordings');
  const files = existsSync(dir)
    ? readdirSync(dir, { recursive: true, withFileTypes: true })
        .filter((e) => e.isFile() && e.name.endsWith('.cast'))
        .map((e) => path.relative(DIST, path.join(e.parentPath, e.name)).split(path.sep).join('/'))
    : [];
  const used = new Set<string>();
  for (const page of site.pages)
    for (const el of findAll(
      readPage(page),
      (e) => attr(e, 'data-recording') !== undefined && attr(e, 'data-terminal') !== undefined,
    ))
      used.add((attr(el, 'data-recording') ?? '').slice(site.base.length).replace(/^\//, ''));
  const stale = files.filter((f) => !used.has(f));
  assert.deepEqual(stale, [], 'recordings no lab block uses (remove them from public/recordings/)');
});
