/**
 * The process map: every process of the session as a tree by parent, one table row
 * each, updated in place from each snapshot (rows are keyed by host PID, so a screen
 * reader's position and the reader's scroll survive the once-a-second refresh).
 */
import type { ProcessSnapshot } from '../lab-api.ts';
import { type Column, dataTable, h, none, srOnly } from './dom.ts';
import { containerInit, insidePids, type ProcessRow, processTree, sharedText, usersText } from './model.ts';

/** Fresh header nodes for each table (a node can be in one place only). */
const columns = (): Column[] => [
  { head: ['Process'] },
  { head: ['Host PID'], num: true },
  { head: ['Container PID'], num: true },
  { head: ['User', srOnly(', on the host then in the container')] },
  { head: ['Shares with host', srOnly(' (namespaces)')] },
];

export class ProcessMap {
  readonly #summary: HTMLParagraphElement;
  readonly #tbody: HTMLTableSectionElement;
  readonly #rows = new Map<number, HTMLTableRowElement>();
  #rendered = false;

  constructor(content: HTMLElement) {
    this.#summary = h('p', { class: 'kv-summary' });
    this.#tbody = h('tbody');
    const table = dataTable({
      class: 'kv-procs',
      caption: 'Processes of the sandbox, as a tree by parent process',
      region: 'Process map',
      columns: columns(),
      body: this.#tbody,
    });
    const legend = h(
      'p',
      { class: 'kv-legend' },
      h('span', { class: 'kv-swatch', 'aria-hidden': 'true' }),
      'Marked rows run in the container: they have a second PID, in its PID namespace. ',
      'Indented rows are children of the row above them; the top rows other than ',
      h('code', {}, 'lab-init'),
      ' have parent 0: your terminals, started from outside the lab host like ',
      h('code', {}, 'docker exec'),
      ' does.',
    );
    content.replaceChildren(this.#summary, table, legend);
  }

  render(snap: ProcessSnapshot): void {
    this.#renderSummary(snap);
    const rows = processTree(snap);
    const keep = new Set<number>();
    // `cursor` is the row that should come next; rows are moved, never rebuilt, unless changed.
    let cursor: ChildNode | null = this.#tbody.firstChild;
    for (const row of rows) {
      const pid = row.proc.pid;
      keep.add(pid);
      const sig = signature(row);
      let tr = this.#rows.get(pid);
      if (!tr || tr.dataset.sig !== sig) {
        const fresh = rowElement(row, sig, this.#rendered && !tr);
        if (tr) {
          if (cursor === tr) cursor = fresh;
          tr.replaceWith(fresh);
        }
        tr = fresh;
        this.#rows.set(pid, tr);
      }
      if (tr === cursor) cursor = cursor.nextSibling;
      else this.#tbody.insertBefore(tr, cursor);
    }
    for (const [pid, tr] of this.#rows) {
      if (!keep.has(pid)) {
        tr.remove();
        this.#rows.delete(pid);
      }
    }
    this.#rendered = true;
  }

  #renderSummary(snap: ProcessSnapshot): void {
    const init = containerInit(snap);
    const n = snap.processes.length;
    const inside = snap.processes.filter((p) => p.inContainer).length;
    const counts = `${n} process${n === 1 ? '' : 'es'}, ${inside} of them in the container.`;
    const key = init ? `${init.pid}/${init.cmd}/${counts}` : `none/${counts}`;
    if (this.#summary.dataset.key === key) return;
    this.#summary.dataset.key = key;
    if (!init) {
      this.#summary.replaceChildren(
        'The container is not running right now (the lab host starts a new one about a second after its PID 1 ends). ',
        counts,
      );
      return;
    }
    this.#summary.replaceChildren(
      'The container’s PID 1 is ',
      h('code', {}, shortCmd(init.cmd)),
      ': ',
      h('strong', {}, `PID ${init.pid} on the host`),
      ' = ',
      h('strong', {}, 'PID 1 in the container'),
      `, one process with two numbers. ${counts}`,
    );
  }
}

function shortCmd(cmd: string): string {
  return cmd.length > 60 ? `${cmd.slice(0, 57)}…` : cmd;
}

function signature(r: ProcessRow): string {
  const p = r.proc;
  return [
    r.depth,
    r.containerInit,
    p.ppid,
    p.nspid.join(','),
    p.users.join(','),
    p.cmd,
    p.sharedWithHost,
  ].join('|');
}

function rowElement(r: ProcessRow, sig: string, isNew: boolean): HTMLTableRowElement {
  const p = r.proc;
  // Container rows are tinted and barred; the text says it too, for screen readers.
  const badge = r.containerInit
    ? h('span', { class: 'kv-badge kv-badge--init' }, 'container’s PID 1')
    : p.inContainer
      ? srOnly(' (in the container)')
      : null;
  const inside = insidePids(p);
  const cls = ['kv-proc', p.inContainer ? 'kv-proc--container' : '', isNew ? 'kv-proc--new' : '']
    .filter(Boolean)
    .join(' ');
  return h(
    'tr',
    {
      class: cls,
      'data-pid': p.pid,
      'data-nspid': p.nspid.join(' '),
      'data-in-container': p.inContainer,
      'data-sig': sig,
    },
    h(
      'th',
      { scope: 'row', class: 'kv-proc__cmd', style: `--depth: ${Math.min(r.depth, 12)}` },
      r.depth > 0 ? h('span', { class: 'kv-proc__branch', 'aria-hidden': 'true' }, '└') : null,
      h('code', { title: p.cmd }, p.cmd),
      badge,
      // The tree shows the parent by indentation; a screen reader gets it in words.
      srOnly(
        r.parentOutside ? ', parent outside the lab host’s PID namespace' : `, child of host PID ${p.ppid}`,
      ),
    ),
    h('td', { class: 'kv-num', 'data-col': 'host-pid' }, String(p.pid)),
    h('td', { class: 'kv-num', 'data-col': 'inside-pid' }, inside || none()),
    h('td', { 'data-col': 'users' }, usersText(p)),
    h('td', { 'data-col': 'shared' }, sharedText(p)),
  );
}
