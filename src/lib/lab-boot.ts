/**
 * The only lab code in a lesson's first load (keep it tiny: no xterm, no API client).
 * It asks once whether live labs are available, wires the lab buttons and the Run
 * buttons of runnable code blocks, and imports `lab-controller.ts` (xterm.js and
 * friends) on the first click that needs it.
 */
import { checkHealth, type LabAvailability, setMessage } from './lab-health.ts';
import { PROGRESS_KEY, renderProgress } from './panels/check-progress.ts';
import { rememberScreenReader, screenReaderPreferred } from './reader-prefs.ts';

type LabPage = import('./lab-controller.ts').LabPage;
type Controller = ReturnType<LabPage['controllerFor']>;

const roots = Array.from(document.querySelectorAll<HTMLElement>('[data-lab-block]'));
/** The page's labs (lab-controller.ts), loaded on the first click that needs them. */
let labPage: Promise<LabPage> | undefined;

function loadLabPage(): Promise<LabPage> {
  labPage ??= import('./lab-controller.ts').then(
    (m) => new m.LabPage(window),
    (err: unknown) => {
      labPage = undefined; // let a later click try again
      throw err;
    },
  );
  return labPage;
}

function status(root: HTMLElement, text: string): void {
  const el = root.querySelector<HTMLElement>('[data-status]');
  if (el) el.textContent = text;
}

/** Runs `fn` on the lab's controller, loading the terminal code first if needed. */
async function withController(root: HTMLElement, fn: (c: Controller) => unknown): Promise<void> {
  let page: LabPage;
  try {
    page = await loadLabPage();
  } catch {
    root.dataset.state = 'error';
    status(root, 'Could not load the terminal code. Check your connection, then press Retry.');
    return;
  }
  await fn(page.controllerFor(root, availability));
}

function setScreenReader(on: boolean): void {
  rememberScreenReader(on);
  for (const root of roots) {
    root.querySelector('[data-action="screen-reader"]')?.setAttribute('aria-pressed', String(on));
  }
  labPage?.then((p) => p.setScreenReaderMode(on)).catch(() => {});
}

/**
 * Wide view: the lab covers the window. It goes to the browser's top layer (a manual
 * popover), because Starlight's main pane is its own stacking context (isolation:
 * isolate) and the fixed site header would otherwise stay on top of it.
 */
function setExpanded(root: HTMLElement, on: boolean): void {
  const topLayer = typeof root.showPopover === 'function';
  if (on && topLayer) {
    root.popover = 'manual';
    root.showPopover();
  } else if (!on && topLayer && root.popover) {
    root.hidePopover();
    root.removeAttribute('popover');
  }
  root.classList.toggle('lab--expanded', on);
  document.documentElement.classList.toggle('lab-expanded-open', on);
  const btn = root.querySelector<HTMLElement>('[data-action="expand"]');
  btn?.setAttribute('aria-pressed', String(on));
  btn?.focus();
}

/** The buttons the controller answers. */
const CONTROLLER_ACTIONS: Record<string, (c: Controller) => unknown> = {
  start: (c) => c.start({ focus: true }),
  'start-vm': (c) => c.start({ focus: true, mode: 'vm' }),
  retry: (c) => c.start({ focus: true }),
  stop: (c) => c.stop(),
  reset: (c) => c.reset(),
  extend: (c) => c.extend(),
  play: (c) => c.toggleRecording(),
};

function onAction(root: HTMLElement, action: string, button: HTMLButtonElement): void {
  const pressed = button.getAttribute('aria-pressed') !== 'true';
  if (action === 'expand') setExpanded(root, pressed);
  if (action === 'screen-reader') setScreenReader(pressed);
  const act = CONTROLLER_ACTIONS[action];
  if (!act) return;
  // Instant feedback while the terminal code downloads; the controller takes over.
  if ((action === 'start' || action === 'start-vm' || action === 'retry') && !labPage) {
    root.dataset.state = 'starting';
    status(root, 'Starting the lab…');
  }
  void withController(root, act);
}

/** The lab a code block runs in: the nearest one before it, else the first one after it. */
function labFor(el: Element): HTMLElement | undefined {
  let found: HTMLElement | undefined;
  for (const root of roots) {
    if (root.compareDocumentPosition(el) & Node.DOCUMENT_POSITION_FOLLOWING) found = root;
  }
  return found ?? roots[0];
}

const PLAY_ICON =
  '<svg aria-hidden="true" viewBox="0 0 24 24" width="14" height="14"><path d="M8 5.5v13a.5.5 0 0 0 .77.42l10-6.5a.5.5 0 0 0 0-.84l-10-6.5A.5.5 0 0 0 8 5.5Z" fill="currentColor"/></svg>';

/** Adds a Run button to every `run=` code block (see src/plugins/remark-run-blocks.ts). */
function wireRunBlocks(): void {
  for (const block of document.querySelectorAll<HTMLElement>('.run-block[data-run]')) {
    const root = labFor(block);
    if (!root) continue;
    const target = block.dataset.run ?? '';
    const code = block.dataset.runCode ?? '';
    const panes = Array.from(root.querySelectorAll<HTMLElement>('[data-terminal]'));
    const pane = panes.find((p) => p.dataset.terminal === target);
    if (!code || (target !== 'both' && !pane)) {
      console.warn(`run=${target}: lab "${root.dataset.lab}" has no such terminal`);
      continue;
    }
    const visible = target === 'both' ? 'Run in both' : `Run in “${pane?.dataset.title}”`;
    const labTitle = root.querySelector('.lab__title')?.textContent ?? root.dataset.lab;
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'run-block__button';
    button.innerHTML = `${PLAY_ICON}<span></span>`;
    const label = button.querySelector('span');
    if (label) label.textContent = visible;
    // The accessible name starts with the visible text (WCAG 2.5.3), then says which lab.
    button.setAttribute(
      'aria-label',
      `${visible}${target === 'both' ? ' terminals' : ''} of the lab “${labTitle}”`,
    );
    button.addEventListener('click', () => {
      void withController(root, (c) => c.run(target, code));
    });
    const bar = document.createElement('div');
    bar.className = 'run-block__bar';
    bar.append(button);
    block.append(bar);
    block.dataset.labId = root.id;
  }
}

/** A message in a step check's status region, without loading the controller. */
function checkMessage(check: HTMLElement, text: string): void {
  const out = check.querySelector<HTMLElement>('[data-check-result]');
  if (!out) return;
  out.dataset.kind = 'error';
  const p = document.createElement('p');
  p.textContent = text;
  out.replaceChildren(p);
}

/** Step checks (`<Check>`): stored progress now, and Check runs them in their lab's session. */
function wireChecks(): void {
  for (const check of document.querySelectorAll<HTMLElement>('[data-check]')) {
    check.querySelector('form')?.addEventListener('submit', (ev) => {
      ev.preventDefault();
      const lab = check.dataset.checkLab;
      const root = roots.find((r) => r.dataset.lab === lab);
      if (!root) {
        checkMessage(check, `This check runs in the lab “${lab}”, which is not on this page.`);
      } else if (availability && availability.kind !== 'live' && !root.dataset.vm) {
        checkMessage(check, 'This check needs a live lab, and live labs are not available here.');
      } else {
        void withController(root, (c) => c.check(check));
      }
    });
  }
  renderProgress();
  // Another tab passed a check: show it here too.
  addEventListener('storage', (ev) => {
    if (ev.key === PROGRESS_KEY) renderProgress();
  });
}

let availability: LabAvailability | undefined;

/**
 * Tells the lab server once per page view that a lab is in view, so it can have a sandbox
 * ready before the reader presses Start (POST /api/v1/labs/:id/hint, server/src/sessions/
 * warm-pool.ts). Only for labs the server runs; a lost hint costs nothing but a cold Start.
 */
function hintWhenSeen(): void {
  const labs = roots.filter((r) => (r.dataset.modes ?? 'server').includes('server') && r.dataset.lab);
  if (labs.length === 0 || typeof IntersectionObserver !== 'function') return;
  const sent = new Set<string>();
  const seen = new IntersectionObserver((entries) => {
    for (const e of entries) {
      const lab = (e.target as HTMLElement).dataset.lab ?? '';
      if (!e.isIntersecting || sent.has(lab)) continue;
      sent.add(lab);
      seen.unobserve(e.target);
      // The answer is read to its end (a few bytes): unread, the request stays open, and
      // cancelled, it counts as a failed request.
      void fetch(`/api/v1/labs/${encodeURIComponent(lab)}/hint`, { method: 'POST' })
        .then((r) => r.arrayBuffer())
        .catch(() => {});
    }
  });
  for (const r of labs) seen.observe(r);
}

function applyAvailability(a: LabAvailability): void {
  availability = a;
  for (const block of document.querySelectorAll<HTMLElement>('.run-block[data-run], [data-check]')) {
    // A block whose lab can run in the tab keeps its Run and Check buttons without a server.
    const root = roots.find((r) =>
      block.dataset.checkLab ? r.dataset.lab === block.dataset.checkLab : r.id === block.dataset.labId,
    );
    block.dataset.labMode = a.kind === 'live' || root?.dataset.vm ? 'live' : 'offline';
  }
  labPage?.then((p) => p.setAvailability(a)).catch(() => {});
  if (a.kind === 'live') {
    hintWhenSeen();
    return;
  }
  for (const root of roots) {
    // Only labs nobody has touched yet switch to the offline presentation; a lab that runs
    // only in the browser never needed a server.
    if (root.dataset.state !== 'idle' || !(root.dataset.modes ?? 'server').includes('server')) continue;
    root.dataset.state = a.kind === 'no-server' ? 'offline' : 'engine-down';
    const detail = root.querySelector<HTMLElement>('[data-engine-detail]');
    if (detail && a.kind === 'engine-down' && a.detail) setMessage(detail, a.detail);
    const plain =
      a.kind === 'no-server' ? 'Live labs are not available here.' : 'Live labs are unavailable right now.';
    status(root, root.dataset.vm ? `${plain} Run this lab in your browser instead.` : plain);
  }
}

if (roots.length > 0) {
  for (const root of roots) {
    root.addEventListener('click', (ev) => {
      const button = (ev.target as Element).closest<HTMLButtonElement>('button[data-action]');
      if (button && root.contains(button)) onAction(root, button.dataset.action ?? '', button);
    });
    // Esc leaves the wide view, unless a terminal has focus (Esc belongs to the shell there).
    root.addEventListener('keydown', (ev) => {
      if (
        ev.key === 'Escape' &&
        root.classList.contains('lab--expanded') &&
        !(ev.target as Element).closest('.xterm')
      ) {
        setExpanded(root, false);
      }
    });
  }
  const sr = screenReaderPreferred();
  for (const root of roots)
    root.querySelector('[data-action="screen-reader"]')?.setAttribute('aria-pressed', String(sr));
  wireRunBlocks();
}
wireChecks();
if (roots.length > 0) void checkHealth().then(applyAvailability);
