/**
 * Unit tests of the runnable code block plugin, through Sätteri itself.
 *   node --test src/plugins/run-blocks.test.ts
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { markdownToHtml } from 'satteri';
import { parseRunMeta, runBlocksPlugin } from './run-blocks.ts';

test('parseRunMeta finds run= anywhere in the meta and returns the rest', () => {
  assert.deepEqual(parseRunMeta('run=container'), { target: 'container', rest: '' });
  assert.deepEqual(parseRunMeta('title="ps" run=both {2}'), { target: 'both', rest: 'title="ps" {2}' });
  assert.deepEqual(parseRunMeta('run="host"'), { target: 'host', rest: '' });
  assert.equal(parseRunMeta('title="run=host"x'), undefined);
  assert.equal(parseRunMeta('rerun=host'), undefined);
  assert.equal(parseRunMeta(null), undefined);
});

test('a run= code block is wrapped in a run-block div with its target and code', async () => {
  const md = ['Text.', '', '```sh run=container', 'ps -ef', '```', '', '```sh', 'echo plain', '```'].join(
    '\n',
  );
  const { html } = await markdownToHtml(md, { mdastPlugins: [runBlocksPlugin] });
  assert.match(
    html,
    /<div class="run-block" data-run="container" data-run-code="ps -ef"><pre><code class="language-sh">ps -ef\n<\/code><\/pre><\/div>/,
  );
  assert.equal(html.match(/run-block/g)?.length, 1, 'plain blocks stay plain');
});

test('the meta passed on no longer contains run=', async () => {
  const md = ['```sh title="Look" run=host', 'id', '```'].join('\n');
  const { html } = await markdownToHtml(md, {
    mdastPlugins: [
      runBlocksPlugin,
      {
        name: 'show-meta',
        code: (node) => ({ type: 'paragraph', children: [{ type: 'text', value: `meta=[${node.meta}]` }] }),
      },
    ],
  });
  assert.match(html, /meta=\[title="Look"\]/);
});
