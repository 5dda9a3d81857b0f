/**
 * The "Kernel view" disclosure of a lab block (markup: src/components/panels/KernelView.astro):
 * tabs for the process map, the namespace diff and the cgroup meters of the lab's
 * current session. Loaded with the lab controller, which calls attach() once a session
 * is ready and detach() when it ends.
 *
 * Polling rule: one request about once a second, only for the tab on show, and only
 * while the disclosure is open, a session is attached and the page is visible
 * (document.visibilityState). Closed, hidden or without a session: no request at all.
 */

import { type Disposable, DisposableStore } from '../disposable.ts';
import type { CgroupReading, LabApiError, ProcessSnapshot } from '../lab-api.ts';
import { CgroupMeters } from './cgroup-meters.ts';
import { setText } from './dom.ts';
import { clock } from './model.ts';
import { NamespaceDiff } from './namespace-diff.ts';
import { Poller } from './poller.ts';
import { ProcessMap } from './process-map.ts';

type TabKey = 'processes' | 'namespaces' | 'cgroup';
const TABS: readonly TabKey[] = ['processes', 'namespaces', 'cgroup'];

/**
 * Where a session's kernel facts come from: the lab server's inspection API, or the
 * in-browser VM's control channel (lab-controller.ts makes one per session).
 */
export interface InspectSource {
  processes(signal: AbortSignal): Promise<ProcessSnapshot>;
  cgroup(signal: AbortSignal): Promise<CgroupReading>;
  /** Time between readings; default about a second. */
  intervalMs?: number;
}

interface Tagged<T> {
  session: InspectSource;
  data: T;
}

export class KernelView implements Disposable {
  readonly details: HTMLDetailsElement;
  /** Its listeners, pollers and the announcement timer. */
  readonly #store = new DisposableStore();
  #announcing: Disposable | undefined;
  #session: InspectSource | undefined;
  #tab: TabKey = 'processes';
  readonly #tabs: HTMLButtonElement[];
  readonly #panels = new Map<TabKey, HTMLElement>();
  readonly #announceEl: HTMLElement | null;
  readonly #procPoller: Poller<Tagged<ProcessSnapshot>>;
  readonly #cgPoller: Poller<Tagged<CgroupReading>>;
  #processMap: ProcessMap | undefined;
  #nsDiff: NamespaceDiff | undefined;
  readonly #meters: CgroupMeters;

  /** The kernel view of a lab block, if its markup is there. */
  static in(labRoot: HTMLElement): KernelView | undefined {
    const details = labRoot.querySelector<HTMLDetailsElement>('details[data-kernel-view]');
    return details ? new KernelView(details) : undefined;
  }

  constructor(details: HTMLDetailsElement) {
    this.details = details;
    this.#tabs = Array.from(details.querySelectorAll<HTMLButtonElement>('[data-kv-tab]'));
    for (const key of TABS) {
      const panel = details.querySelector<HTMLElement>(`[data-kv-panel="${key}"]`);
      if (panel) this.#panels.set(key, panel);
    }
    this.#announceEl = details.querySelector('[data-kv-announce]');
    const idBase = this.#panels.get('cgroup')?.id ?? 'kv';
    this.#meters = new CgroupMeters(this.#content('cgroup'), idBase, (t) => this.#announce(t));

    this.#procPoller = this.#poller(
      (s, signal) => s.processes(signal),
      (v) => this.#gotProcesses(v),
      ['processes', 'namespaces'],
    );
    this.#cgPoller = this.#poller(
      (s, signal) => s.cgroup(signal),
      (v) => this.#gotCgroup(v),
      ['cgroup'],
    );

    this.#store.listen(details, 'toggle', () => this.#update());
    for (const tab of this.#tabs) {
      this.#store.listen(tab, 'click', () => this.select(tab.dataset.kvTab as TabKey));
      this.#store.listen(tab, 'keydown', (ev) => this.#tabKey(ev as KeyboardEvent));
    }
    this.#store.listen(document, 'visibilitychange', () => this.#update());
  }

  /** Stops polling and removes its listeners (the lab block goes away). */
  dispose(): void {
    this.#session = undefined;
    this.#store.dispose();
  }

  /** A poller of one endpoint for the attached session; its answers carry the session they are for. */
  #poller<T>(
    get: (s: InspectSource, signal: AbortSignal) => Promise<T>,
    onData: (v: Tagged<T>) => void,
    tabs: TabKey[],
  ): Poller<Tagged<T>> {
    return this.#store.add(
      new Poller({
        intervalMs: () => this.#session?.intervalMs ?? 1000,
        load: async (signal) => {
          const session = this.#session!;
          return { session, data: await get(session, signal) };
        },
        onData,
        onError: (err) => this.#failed(err, tabs),
      }),
    );
  }

  /** A session is ready: show its figures (polling starts if the view is open). */
  attach(session: InspectSource): void {
    this.#session = session;
    this.#processMap = undefined;
    this.#nsDiff = undefined;
    for (const key of ['processes', 'namespaces'] as const) {
      this.#content(key).replaceChildren(emptyNote('Reading the processes…'));
      setText(this.#stamp(key), '');
    }
    this.#meters.reset();
    setText(this.#stamp('cgroup'), '');
    this.#update();
  }

  /** The session ended: stop polling at once. */
  detach(): void {
    this.#session = undefined;
    this.#update();
  }

  /** Shows one tab (and polls what it needs). */
  select(key: TabKey, focus = false): void {
    if (!TABS.includes(key)) return;
    this.#tab = key;
    for (const tab of this.#tabs) {
      const on = tab.dataset.kvTab === key;
      tab.setAttribute('aria-selected', String(on));
      tab.tabIndex = on ? 0 : -1;
      if (on && focus) tab.focus();
    }
    for (const [k, panel] of this.#panels) panel.hidden = k !== key;
    this.#update();
  }

  /** Whether each endpoint is being polled (for tests and devtools). */
  get polling(): { processes: boolean; cgroup: boolean } {
    return { processes: this.#procPoller.active, cgroup: this.#cgPoller.active };
  }

  #update(): void {
    const on = this.#session !== undefined && this.details.open && document.visibilityState === 'visible';
    this.#procPoller.setActive(on && this.#tab !== 'cgroup');
    this.#cgPoller.setActive(on && this.#tab === 'cgroup');
    this.details.toggleAttribute('data-polling', on);
  }

  #gotProcesses({ session, data }: Tagged<ProcessSnapshot>): void {
    if (session !== this.#session) return;
    this.#processMap ??= new ProcessMap(this.#content('processes'));
    this.#nsDiff ??= new NamespaceDiff(this.#content('namespaces'));
    this.#processMap.render(data);
    this.#nsDiff.render(data);
    const stamp = `Live · read at ${clock(new Date(data.takenAt))}`;
    setText(this.#stamp('processes'), stamp);
    setText(this.#stamp('namespaces'), stamp);
  }

  #gotCgroup({ session, data }: Tagged<CgroupReading>): void {
    if (session !== this.#session) return;
    this.#meters.render(data);
    setText(this.#stamp('cgroup'), `Live · read at ${clock(new Date(data.takenAt))}`);
  }

  #failed(err: unknown, keys: TabKey[]): 'retry' | 'stop' {
    const e = err as LabApiError;
    const gone = e.status === 401 || e.status === 404 || e.status === 410;
    const text = gone
      ? 'This sandbox has ended; start the lab again to see a new one.'
      : `Could not read the sandbox (${e.message || 'no answer'}); trying again. A lab host at its pids limit may not answer for a moment.`;
    for (const key of keys) setText(this.#stamp(key), text);
    return gone ? 'stop' : 'retry';
  }

  /** Arrow keys, Home and End move between tabs (the WAI-ARIA tabs pattern). */
  #tabKey(ev: KeyboardEvent): void {
    const i = TABS.indexOf(this.#tab);
    const next =
      ev.key === 'ArrowRight'
        ? TABS[(i + 1) % TABS.length]
        : ev.key === 'ArrowLeft'
          ? TABS[(i + TABS.length - 1) % TABS.length]
          : ev.key === 'Home'
            ? TABS[0]
            : ev.key === 'End'
              ? TABS[TABS.length - 1]
              : undefined;
    if (!next) return;
    ev.preventDefault();
    this.select(next, true);
  }

  #content(key: TabKey): HTMLElement {
    const panel = this.#panels.get(key);
    // A detached element when the markup lacks the part: rendering into it is harmless.
    return panel?.querySelector<HTMLElement>('[data-kv-content]') ?? document.createElement('div');
  }

  #stamp(key: TabKey): HTMLElement {
    const panel = this.#panels.get(key);
    return panel?.querySelector<HTMLElement>('[data-kv-stamp]') ?? document.createElement('p');
  }

  /** Polite and rare: only events (an OOM kill, refused forks) are announced. */
  #announce(text: string): void {
    if (!this.#announceEl) return;
    // Clearing first makes a repeated identical message announced again.
    const el = this.#announceEl;
    el.textContent = '';
    this.#store.drop(this.#announcing);
    this.#announcing = this.#store.timeout(() => {
      el.textContent = text;
    }, 50);
  }
}

function emptyNote(text: string): HTMLParagraphElement {
  const p = document.createElement('p');
  p.className = 'kv__empty';
  p.textContent = text;
  return p;
}
