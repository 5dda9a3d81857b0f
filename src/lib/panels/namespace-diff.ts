/**
 * The namespace diff: each kind of namespace of the lab host (its PID 1) next to the one
 * of the container's PID 1, marked shared or separate. Rebuilt only when an inode
 * changes (a restarted container gets new namespaces).
 */
import type { ProcessSnapshot } from '../lab-api.ts';
import { dataTable, h, srOnly } from './dom.ts';
import { containerInit, namespaceDiff } from './model.ts';

export class NamespaceDiff {
  readonly #content: HTMLElement;
  #key = '';

  constructor(content: HTMLElement) {
    this.#content = content;
  }

  render(snap: ProcessSnapshot): void {
    const rows = namespaceDiff(snap);
    const init = containerInit(snap);
    const key =
      rows && init ? `${init.pid}:${rows.map((r) => `${r.host}/${r.container}`).join(',')}` : 'none';
    if (key === this.#key) return;
    this.#key = key;
    if (!rows || !init) {
      this.#content.replaceChildren(
        h(
          'p',
          { class: 'kv-summary' },
          'The container is not running right now, so there is nothing to compare. The lab host starts a new one about a second after its PID 1 ends.',
        ),
      );
      return;
    }
    const shared = rows.filter((r) => r.shared).map((r) => r.kind);
    const separate = rows.filter((r) => !r.shared).map((r) => r.kind);
    const summary = h(
      'p',
      { class: 'kv-summary' },
      h('strong', {}, 'Separate: '),
      separate.join(', ') || 'none',
      '. ',
      h('strong', {}, 'Shared with the host: '),
      shared.join(', ') || 'none',
      '.',
    );
    const table = dataTable({
      class: 'kv-ns',
      caption: 'Namespaces of the lab host and of the container’s PID 1',
      region: 'Namespace comparison',
      columns: [
        { head: ['Kind: what it isolates'] },
        { head: ['Shared?'] },
        { head: ['Lab host', srOnly(' (its PID 1)')], num: true },
        { head: ['Container', srOnly(` (its PID 1, host PID ${init.pid})`)], num: true },
      ],
      body: h(
        'tbody',
        {},
        ...rows.map((r) =>
          h(
            'tr',
            { 'data-ns-kind': r.kind, 'data-shared': r.shared, class: r.shared ? 'kv-ns--shared' : '' },
            h(
              'th',
              { scope: 'row', class: 'kv-ns__kind' },
              h('code', {}, r.kind),
              h('span', { class: 'kv-ns__what' }, r.isolates),
            ),
            h(
              'td',
              { 'data-col': 'verdict' },
              h(
                'span',
                { class: `kv-verdict kv-verdict--${r.shared ? 'shared' : 'separate'}` },
                h('span', { class: 'kv-verdict__icon', 'aria-hidden': 'true' }, r.shared ? '=' : '≠'),
                r.shared ? 'Shared' : 'Separate',
              ),
            ),
            h('td', { class: 'kv-num' }, h('code', {}, r.host || '?')),
            h('td', { class: 'kv-num' }, h('code', {}, r.container || '?')),
          ),
        ),
      ),
    });
    this.#content.replaceChildren(summary, table);
  }
}
