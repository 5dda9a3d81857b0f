/**
 * Unit tests of step-check progress: stored per check in localStorage, shown as a ✓ on
 * each passed check and "N of M steps done" in the check's lab block. Runs on small
 * fakes of localStorage and the document (no browser).
 *   node --test src/lib/panels/check-progress.test.ts
 */
import assert from 'node:assert/strict';
import { beforeEach, test } from 'node:test';
import { PROGRESS_KEY, passedChecks, recordPass, renderProgress } from './check-progress.ts';

const store = new Map<string, string>();
Object.defineProperty(globalThis, 'localStorage', {
  configurable: true,
  value: {
    getItem: (k: string) => store.get(k) ?? null,
    setItem: (k: string, v: string) => void store.set(k, v),
  },
});

beforeEach(() => store.clear());

class FakeEl {
  dataset: Record<string, string | undefined> = {};
  attrs = new Set<string>();
  hidden = true;
  textContent = '';
  children: FakeEl[] = [];
  constructor(data: Record<string, string> = {}) {
    Object.assign(this.dataset, data);
  }
  querySelector(sel: string): FakeEl | null {
    const key = sel.slice(6, -1); // [data-x-y] → x-y
    const camel = key.replace(/-(\w)/g, (_, c: string) => c.toUpperCase());
    return this.children.find((c) => camel in c.dataset) ?? null;
  }
  toggleAttribute(name: string, on: boolean): void {
    if (on) this.attrs.add(name);
    else this.attrs.delete(name);
  }
}

function page(labs: string[], checks: [string, string][]) {
  const roots = labs.map((lab) => {
    const root = new FakeEl({ lab, labBlock: '' });
    const progress = new FakeEl({ checkProgress: '' });
    progress.children.push(new FakeEl({ checkProgressText: '' }));
    root.children.push(progress);
    return root;
  });
  const els = checks.map(([lab, check]) => new FakeEl({ checkLab: lab, check }));
  const doc = {
    querySelectorAll: (sel: string) => (sel === '[data-check]' ? els : roots),
  } as unknown as Document;
  const progress = (i: number) => roots[i]!.children[0]!;
  return { doc, els, progress, text: (i: number) => progress(i).children[0]!.textContent };
}

test('a pass is stored once, with the time it first passed', () => {
  assert.deepEqual(passedChecks(), {});
  recordPass('processes', 'sleep-host-pid', new Date('2026-01-01T10:00:00Z'));
  recordPass('processes', 'sleep-host-pid', new Date('2026-01-02T10:00:00Z'));
  assert.deepEqual(passedChecks(), { 'processes/sleep-host-pid': '2026-01-01T10:00:00.000Z' });
});

test('garbled storage counts as no progress', () => {
  store.set(PROGRESS_KEY, '{not json');
  assert.deepEqual(passedChecks(), {});
  store.set(PROGRESS_KEY, '[1,2]');
  assert.deepEqual(passedChecks(), {});
});

test('passed checks get their ✓ and each lab block counts its own checks of the page', () => {
  recordPass('cgroups', 'oom-kill');
  recordPass('processes', 'sleep-host-pid');
  const p = page(
    ['cgroups', 'namespaces'],
    [
      ['cgroups', 'memory-limit'],
      ['cgroups', 'oom-kill'],
      ['cgroups', 'pids-limit'],
    ],
  );
  renderProgress(p.doc);
  assert.deepEqual(
    p.els.map((e) => e.dataset.passed !== undefined),
    [false, true, false],
  );
  assert.equal(p.text(0), '1 of 3 steps done');
  assert.equal(p.progress(0).hidden, false);
  assert.equal(p.progress(0).attrs.has('data-complete'), false);
  assert.equal(p.progress(1).hidden, true, 'a lab without checks on the page shows no progress');

  recordPass('cgroups', 'memory-limit');
  recordPass('cgroups', 'pids-limit');
  renderProgress(p.doc);
  assert.equal(p.text(0), '3 of 3 steps done');
  assert.equal(p.progress(0).attrs.has('data-complete'), true);
});
