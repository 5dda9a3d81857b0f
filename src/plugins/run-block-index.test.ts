/**
 * Unit tests of the runnable-block index, on small lessons and on the course itself.
 *   node --test src/plugins/run-block-index.test.ts
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadLabs } from '../../labs/load.ts';
import type { LabDef } from '../../labs/schema.ts';
import {
  labBlocks,
  labProblems,
  lessonRunBlocks,
  lessonSlug,
  RunBlockIndexError,
  runBlockIndex,
} from './run-block-index.ts';

const ROOT = join(import.meta.dirname, '..', '..');

const LESSON = [
  '---',
  'title: T',
  '---',
  "import Lab from '../src/components/Lab.astro';",
  '',
  '```sh run=host',
  'before the lab',
  '```',
  '',
  '<Lab id="processes" />',
  '',
  '```sh run=both expect="^box$|^labhost$"',
  'hostname',
  '```',
  '',
  '```sh',
  'not runnable',
  '```',
  '',
  '<Tabs syncKey="cgroup-version">',
  '<TabItem label="cgroup v1">',
  '',
  '```sh run=host expect="\\(memory\\) \\"x\\""',
  '  cat /sys/fs/cgroup/memory/memory.limit_in_bytes',
  'echo two',
  '```',
  '',
  '</TabItem>',
  '<TabItem label="cgroup v2">',
  '',
  '```sh run=host expect=".*"',
  'cat /sys/fs/cgroup/memory.max',
  '```',
  '',
  '</TabItem>',
  '</Tabs>',
  '',
  '<Lab id="cgroups" />',
  '',
  '```sh run=container',
  'id',
  '```',
].join('\n');

test('every run= block, in order, with its lab, target, code, expect and tab', () => {
  const blocks = lessonRunBlocks(LESSON, 'content/09-t.mdx', '09-t');
  assert.deepEqual(
    blocks.map((b) => [b.order, b.line, b.lab, b.target, b.code, b.expect, b.tab]),
    [
      // Before any <Lab>: the first lab after it, as the page's Run button does.
      [1, 6, 'processes', 'host', 'before the lab', undefined, undefined],
      [2, 12, 'processes', 'both', 'hostname', '^box$|^labhost$', undefined],
      [
        3,
        23,
        'processes',
        'host',
        'cat /sys/fs/cgroup/memory/memory.limit_in_bytes\necho two',
        // As written: CommonMark would have turned \( into (.
        '\\(memory\\) "x"',
        { group: 'cgroup-version', label: 'cgroup v1', set: 1 },
      ],
      [
        4,
        31,
        'processes',
        'host',
        'cat /sys/fs/cgroup/memory.max',
        '.*',
        { group: 'cgroup-version', label: 'cgroup v2', set: 1 },
      ],
      [5, 40, 'cgroups', 'container', 'id', undefined, undefined],
    ],
  );
  assert.ok(blocks.every((b) => b.lesson === '09-t' && b.file === 'content/09-t.mdx'));
  assert.deepEqual(
    labBlocks(blocks).map((g) => [g.lab, g.blocks.map((b) => b.order)]),
    [
      ['processes', [1, 2, 3, 4]],
      ['cgroups', [5]],
    ],
  );
});

test('a lesson it cannot index: every problem with its file and line', () => {
  const bad = [
    '```sh run=host',
    'id',
    '```',
    '',
    '```sh run=host expect="("',
    'id',
    '```',
    '',
    '<Lab />',
  ].join('\n');
  assert.throws(
    () => lessonRunBlocks(bad, 'content/x.mdx', 'x'),
    (err: Error) =>
      err instanceof RunBlockIndexError &&
      /content\/x\.mdx:5: expect= is not a valid regular expression/.test(err.message) &&
      /content\/x\.mdx:9: <Lab> needs id=/.test(err.message) &&
      /content\/x\.mdx:1: run=host block, but no <Lab id="…"> on the page/.test(err.message),
  );
});

test('a block whose lab lacks its terminal, or whose lab does not exist', () => {
  const labs = [{ id: 'one', terminals: [{ name: 'host' }, { name: 'container' }] }] as unknown as LabDef[];
  const src = [
    '<Lab id="one" />',
    '',
    '```sh run=shell',
    'id',
    '```',
    '',
    '<Lab id="two" />',
    '',
    '```sh run=host',
    'id',
    '```',
  ].join('\n');
  const problems = labProblems(lessonRunBlocks(src, 'content/y.mdx', 'y'), labs);
  assert.deepEqual(problems, [
    'content/y.mdx:3: run=shell, but lab "one" has the terminals host, container',
    'content/y.mdx:9: <Lab id="two">: no such lab in labs/',
  ]);
});

test('lesson slugs follow the content collection', () => {
  assert.equal(lessonSlug('03-a-container-is-a-process.mdx'), '03-a-container-is-a-process');
  assert.equal(lessonSlug('index.mdx'), '');
  assert.equal(lessonSlug('part/intro.md'), 'part/intro');
  assert.equal(lessonSlug('x.mdx', { slug: 'custom/' }), 'custom');
});

test('the course itself: every runnable block has a lab with its terminal', async () => {
  const blocks = await runBlockIndex({ root: ROOT, labs: await loadLabs(join(ROOT, 'labs')) });
  assert.ok(blocks.length >= 50, `found ${blocks.length} runnable blocks`);
  const lessons = new Set(blocks.map((b) => b.lesson));
  assert.ok(lessons.has('03-a-container-is-a-process'), [...lessons].join(', '));
  for (const b of blocks) assert.notEqual(b.code, '', `${b.file}:${b.line} is empty`);
});
