/**
 * Unit tests of the runnable code block plugin, through Sätteri itself.
 *   node --test src/plugins/run-blocks.test.ts
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { markdownToHtml } from 'satteri';
import { parseRunMeta, rawMeta, runBlocksPlugin } from './run-blocks.ts';

test('parseRunMeta finds run= anywhere in the meta and returns the rest', () => {
  assert.deepEqual(parseRunMeta('run=container'), { target: 'container', expect: undefined, rest: '' });
  assert.deepEqual(parseRunMeta('title="ps" run=both {2}'), {
    target: 'both',
    expect: undefined,
    rest: 'title="ps" {2}',
  });
  assert.deepEqual(parseRunMeta('run="host"'), { target: 'host', expect: undefined, rest: '' });
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

test('parseRunMeta reads expect="…" (the regex as written, \\" for a quote) and keeps it out of the rest', () => {
  assert.deepEqual(parseRunMeta('run=container expect="^\\s*1\\s"'), {
    target: 'container',
    expect: '^\\s*1\\s',
    rest: '',
  });
  assert.deepEqual(parseRunMeta('title="x" run=host expect="say \\"hi\\"" {2}'), {
    target: 'host',
    expect: 'say "hi"',
    rest: 'title="x" {2}',
  });
  // `\\` is a regex's literal backslash and does not escape the closing quote.
  assert.equal(parseRunMeta('run=host expect="a\\\\"')?.expect, 'a\\\\');
  assert.equal(parseRunMeta('run=both')?.expect, undefined);
});

test('parseRunMeta refuses a malformed expect=, saying why', () => {
  assert.throws(() => parseRunMeta('expect="x"'), /expect= belongs to a run= block/);
  assert.throws(() => parseRunMeta('run=host expect=x'), /double-quoted/);
  assert.throws(() => parseRunMeta('run=host expect="open'), /double-quoted/);
  assert.throws(() => parseRunMeta('run=host expect="(" '), /not a valid regular expression/);
  assert.throws(() => parseRunMeta('run=host expect="a" expect="b"'), /one expect= per block/);
  assert.throws(() => parseRunMeta('run= ps'), /run= needs a terminal name/);
});

test('rawMeta is the info string as written, backslashes and all', () => {
  const src = 'Text\n\n```sh run=host expect="\\(errno 11\\)" title="t"\ncode\n```\n';
  assert.equal(rawMeta(src, src.indexOf('```')), 'run=host expect="\\(errno 11\\)" title="t"');
  assert.equal(rawMeta('  ~~~~sh   run=both  \n', 0), 'run=both');
  assert.equal(rawMeta('```sh\n', 0), undefined);
  assert.equal(rawMeta('not a fence\n', 0), undefined);
});

test('expect= never reaches the page or Expressive Code; other options do, as CommonMark read them', async () => {
  const md = ['```sh title="a \\"b\\"" run=host expect="\\(errno 11\\) \\"q\\"" {2}', 'id', '```'].join('\n');
  const { html } = await markdownToHtml(md, {
    mdastPlugins: [
      runBlocksPlugin,
      {
        name: 'show-meta',
        code: (node) => ({ type: 'paragraph', children: [{ type: 'text', value: `meta=[${node.meta}]` }] }),
      },
    ],
  });
  assert.match(html, /meta=\[title="a "b"" \{2\}\]/);
  assert.doesNotMatch(html, /expect|errno/);
  const plain = await markdownToHtml(md, { mdastPlugins: [runBlocksPlugin] });
  assert.doesNotMatch(plain.html, /expect|errno/);
  assert.match(plain.html, /data-run="host" data-run-code="id"/);
});

test('a malformed run= or expect= stops the build with the line', async () => {
  await assert.rejects(
    async () =>
      markdownToHtml('# T\n\n```sh run=host expect="("\nid\n```\n', { mdastPlugins: [runBlocksPlugin] }),
    (err: Error) => /:3: expect= is not a valid regular expression/.test(err.message),
  );
  await assert.rejects(
    async () => markdownToHtml('```sh run=\nid\n```\n', { mdastPlugins: [runBlocksPlugin] }),
    /run= needs a terminal name/,
  );
});
