/**
 * The runnable blocks of the built pages against the index the lessons test and the
 * recorder read (src/plugins/run-block-index.ts): the same blocks, in the same order, with
 * the same terminal and code, each in an Expressive Code frame; and `expect=` (for tests,
 * not readers) nowhere in a page.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { attr, DIST, find, findAll, hasClass, listPages, readPage, useLessonPages } from './site.ts';

const site = useLessonPages();

test('each lesson page has exactly the runnable blocks of the index, in order, in Expressive Code', () => {
  assert.ok(site.index.length > 0, 'the index has no runnable blocks');
  const problems: string[] = [];
  for (const page of site.pages) {
    const lesson = page.path.slice(site.base.length).replace(/^\/|\/$/g, '');
    const onPage = findAll(readPage(page), (el) => hasClass(el, 'run-block')).map((el) => ({
      target: attr(el, 'data-run'),
      code: attr(el, 'data-run-code'),
      framed: find(el, (x) => hasClass(x, 'expressive-code')) !== undefined,
    }));
    const indexed = site.index
      .filter((b) => b.lesson === lesson)
      .map((b) => ({ target: b.target, code: b.code }));
    const same =
      JSON.stringify(onPage.map(({ target, code }) => ({ target, code }))) === JSON.stringify(indexed);
    if (!same)
      problems.push(
        `${page.file}: the page has ${onPage.length} runnable blocks, the index ${indexed.length}:\n  page:  ${JSON.stringify(onPage.map((b) => `${b.target}: ${b.code}`))}\n  index: ${JSON.stringify(indexed.map((b) => `${b.target}: ${b.code}`))}`,
      );
    onPage.forEach((b, i) => {
      if (!b.framed) problems.push(`${page.file}: runnable block ${i + 1} is not an Expressive Code block`);
    });
  }
  assert.equal(problems.length, 0, problems.join('\n'));
});

test('expect= never reaches a page', () => {
  const leaks = listPages(DIST, site.base).filter((p) => /\bexpect=/.test(readFileSync(p.abs, 'utf8')));
  assert.deepEqual(
    leaks.map((p) => p.file),
    [],
  );
});
