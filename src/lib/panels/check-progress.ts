/**
 * Step-check progress, kept in the browser (localStorage) and shown on first load: a ✓
 * on each passed `<Check>` and "2 of 3 steps done" in its lab block. Part of the page's
 * first-load script (lab-boot.ts), so it stays tiny; running a check is step-checks.ts,
 * loaded with the lab controller.
 */

export const PROGRESS_KEY = 'container-labs:checks';

/** "<lab>/<check>" → when it first passed (ISO time). */
export type PassedChecks = Record<string, string>;

export function passedChecks(): PassedChecks {
  try {
    const v = JSON.parse(localStorage.getItem(PROGRESS_KEY) ?? '{}') as unknown;
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as PassedChecks) : {};
  } catch {
    return {}; // storage blocked or garbled: no progress, not an error
  }
}

/** Remembers a passed check (the first time counts; re-runs keep it). */
export function recordPass(lab: string, check: string, now = new Date()): void {
  const all = passedChecks();
  const key = `${lab}/${check}`;
  if (all[key]) return;
  all[key] = now.toISOString();
  try {
    localStorage.setItem(PROGRESS_KEY, JSON.stringify(all));
  } catch {
    // private mode: progress lasts for this page only
  }
}

/** Marks the page's passed checks and writes each lab's "N of M steps done". */
export function renderProgress(doc: Document = document): void {
  const passed = passedChecks();
  const checks = Array.from(doc.querySelectorAll<HTMLElement>('[data-check]'));
  for (const el of checks) {
    // A pass seen on this page counts even when storage is blocked.
    if (passed[`${el.dataset.checkLab}/${el.dataset.check}`]) el.dataset.passed = '';
  }
  for (const root of doc.querySelectorAll<HTMLElement>('[data-lab-block]')) {
    const out = root.querySelector<HTMLElement>('[data-check-progress]');
    const mine = checks.filter((c) => c.dataset.checkLab === root.dataset.lab);
    if (!out || mine.length === 0) continue;
    const done = mine.filter((c) => c.dataset.passed !== undefined).length;
    const text = `${done} of ${mine.length} step${mine.length === 1 ? '' : 's'} done`;
    const label = out.querySelector('[data-check-progress-text]') ?? out;
    if (label.textContent !== text) label.textContent = text;
    out.hidden = false;
    out.toggleAttribute('data-complete', done === mine.length);
  }
}
