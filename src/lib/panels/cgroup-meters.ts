/**
 * The cgroup meters: memory, pids and CPU of the lab host against their limits, the
 * throttling counters, and events (OOM kills, refused forks) found by comparing
 * successive readings. The meters are role="meter" with their value as text too; only
 * events are announced (through the kernel view's polite live region).
 */
import type { CgroupReading } from '../lab-api.ts';
import { h, setText } from './dom.ts';
import {
  type CgroupEvent,
  cgroupEvents,
  cpuGauge,
  eventText,
  type Gauge,
  memoryGauge,
  mib,
  pidsGauge,
  throttleText,
} from './model.ts';

interface MeterEls {
  value: HTMLElement;
  bar: HTMLElement;
  fill: HTMLElement;
  note: HTMLElement;
}

export class CgroupMeters {
  readonly #content: HTMLElement;
  readonly #idBase: string;
  readonly #announce: (text: string) => void;
  #version: HTMLElement | undefined;
  #meters: Record<'memory' | 'pids' | 'cpu', MeterEls> | undefined;
  #eventList: HTMLOListElement | undefined;
  #prev: CgroupReading | undefined;
  #events: CgroupEvent[] = [];

  constructor(content: HTMLElement, idBase: string, announce: (text: string) => void) {
    this.#content = content;
    this.#idBase = idBase;
    this.#announce = announce;
  }

  /** A new session: forget the old readings and events. */
  reset(): void {
    this.#prev = undefined;
    this.#events = [];
    this.#meters = undefined;
    this.#content.replaceChildren(h('p', { class: 'kv__empty' }, 'Reading the cgroup…'));
  }

  /** The events seen so far, newest first (for tests and the list). */
  get events(): readonly CgroupEvent[] {
    return this.#events;
  }

  render(r: CgroupReading): void {
    if (!this.#meters) this.#build();
    const fresh = cgroupEvents(this.#prev, r);
    const prev = this.#prev;
    this.#prev = r;
    setText(this.#version!, `cgroup v${r.version}`);
    const m = this.#meters!;

    updateMeter(m.memory, memoryGauge(r), 'not reported');
    const peak = r.memory.peak !== null ? `Peak ${mib(r.memory.peak)}` : 'Peak: not reported';
    const ooms =
      r.memory.oomKills !== null ? `OOM kills so far: ${r.memory.oomKills}` : 'OOM kills: not reported';
    setText(m.memory.note, `${peak}. ${ooms}.`);

    updateMeter(m.pids, pidsGauge(r), 'not reported');
    setText(
      m.pids.note,
      r.pids.refused !== null ? `Forks refused so far: ${r.pids.refused}.` : 'Refused forks: not reported.',
    );

    updateMeter(m.cpu, cpuGauge(r), 'measuring… (needs two readings)');
    setText(m.cpu.note, throttleText(prev, r));

    if (fresh.length) {
      this.#events = [...fresh.reverse(), ...this.#events].slice(0, 20);
      this.#renderEvents();
      this.#announce(fresh.map(eventText).join('. '));
    } else if (!prev) {
      this.#renderEvents();
    }
  }

  #build(): void {
    const meter = (key: 'memory' | 'pids' | 'cpu', label: string): [HTMLElement, MeterEls] => {
      const labelId = `${this.#idBase}-meter-${key}`;
      const value = h('span', { class: 'kv-meter__value', 'data-kv-value': key });
      const fill = h('span', { class: 'kv-meter__fill' });
      const bar = h(
        'div',
        { class: 'kv-meter__bar', 'data-labelledby': labelId, 'aria-hidden': 'true' },
        fill,
      );
      const note = h('p', { class: 'kv-meter__note', 'data-kv-note': key });
      const el = h(
        'div',
        { class: 'kv-meter', 'data-kv-meter': key },
        h(
          'div',
          { class: 'kv-meter__head' },
          h('span', { class: 'kv-meter__label', id: labelId }, label),
          value,
        ),
        bar,
        note,
      );
      return [el, { value, bar, fill, note }];
    };
    const [memEl, mem] = meter('memory', 'Memory');
    const [pidsEl, pids] = meter('pids', 'Processes and threads (pids)');
    const [cpuEl, cpu] = meter('cpu', 'CPU');
    this.#meters = { memory: mem, pids, cpu };
    this.#version = h('span', { class: 'kv-badge kv-badge--version', 'data-kv-version': '' });
    this.#eventList = h('ol', { class: 'kv-events', 'data-kv-events': '' });
    const eventsId = `${this.#idBase}-events`;
    this.#content.replaceChildren(
      h(
        'p',
        { class: 'kv-summary' },
        this.#version,
        ' The kernel enforces these limits on every process of the lab host, the container’s included.',
      ),
      h('div', { class: 'kv-meters' }, memEl, pidsEl, cpuEl),
      h('h4', { class: 'kv__subheading', id: eventsId }, 'Events'),
      this.#eventList,
    );
    this.#eventList.setAttribute('aria-labelledby', eventsId);
  }

  #renderEvents(): void {
    const list = this.#eventList!;
    if (this.#events.length === 0) {
      list.replaceChildren(
        h(
          'li',
          { class: 'kv-events__none' },
          'None yet: no OOM kill and no refused fork since this panel opened.',
        ),
      );
      return;
    }
    list.replaceChildren(
      ...this.#events.map((e) =>
        h(
          'li',
          { class: `kv-event kv-event--${e.kind}`, 'data-kv-event': e.kind },
          h('span', { class: 'kv-event__icon', 'aria-hidden': 'true' }, e.kind === 'oom' ? '✖' : '⊘'),
          h('time', { datetime: e.at.toISOString() }, eventText(e)),
        ),
      ),
    );
  }
}

function updateMeter(els: MeterEls, g: Gauge | null, missing: string): void {
  const text = g ? g.text : missing;
  setText(els.value, text);
  const level =
    g?.fraction == null ? 'none' : g.fraction >= 0.95 ? 'full' : g.fraction >= 0.8 ? 'high' : 'ok';
  els.bar.dataset.level = level;
  if (g && g.max !== null) {
    els.bar.removeAttribute('aria-hidden');
    els.bar.setAttribute('role', 'meter');
    els.bar.setAttribute('aria-labelledby', els.bar.dataset.labelledby ?? '');
    els.bar.setAttribute('aria-valuemin', '0');
    els.bar.setAttribute('aria-valuemax', String(g.max));
    els.bar.setAttribute('aria-valuenow', String(Math.min(g.value, g.max)));
    els.bar.setAttribute('aria-valuetext', text);
    els.fill.style.width = `${Math.min(100, (g.fraction ?? 0) * 100).toFixed(1)}%`;
  } else {
    // No limit (or no reading yet): no gauge to fill, the text says why.
    for (const a of [
      'role',
      'aria-labelledby',
      'aria-valuemin',
      'aria-valuemax',
      'aria-valuenow',
      'aria-valuetext',
    ])
      els.bar.removeAttribute(a);
    els.bar.setAttribute('aria-hidden', 'true');
    els.fill.style.width = '0';
  }
}
