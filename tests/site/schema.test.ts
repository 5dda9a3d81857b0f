/**
 * Content schema: a lesson without a `title` must stop the build with a message naming the lesson
 * file and the `title` field. This runs the real `astro` CLI on a copy of the project (its own
 * astro.config.mjs, src/content.config.ts with Starlight's docsSchema(), and its current lessons),
 * so any change to the project's schema or loader is exercised too.
 */
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { after, before, test } from 'node:test';
import { requireDist } from './site.ts';
import { makeTempProject, type TempProject } from './temp-project.ts';

let project: TempProject;

before(async () => {
  requireDist();
  project = await makeTempProject('schema');
});

after(async () => {
  await project?.cleanup();
});

test('the current lessons pass the content schema (control: `astro sync` on an unmodified copy)', async () => {
  const run = await project.astro(['sync']);
  assert.equal(run.code, 0, `astro sync failed on the unmodified lessons:\n${run.output}`);
});

test('a lesson missing its `title` fails the build with a message naming the file and `title`', async () => {
  const file = await project.writeLesson(
    '99-lesson-without-title.mdx',
    ['---', 'description: A lesson whose author forgot the title.', '---', '', 'Some text.', ''].join('\n'),
  );
  try {
    const run = await project.astro(['build', '--outDir', 'dist-bad']);
    assert.notEqual(run.code, 0, `astro build succeeded although ${file} has no title:\n${run.output}`);
    assert.match(run.output, /InvalidContentEntryDataError|does not match collection schema/, run.output);
    assert.match(
      run.output,
      /99-lesson-without-title/,
      `the message does not name the lesson:\n${run.output}`,
    );
    assert.match(
      run.output,
      /\btitle\b[^\n]*Required|Required[^\n]*\btitle\b/i,
      `no "title … Required":\n${run.output}`,
    );
  } finally {
    await rm(file, { force: true });
  }
});

test('a lesson with an empty frontmatter also fails on `title`', async () => {
  const file = await project.writeLesson(
    '98-no-frontmatter.md',
    '# Just a heading\n\nNo frontmatter at all.\n',
  );
  try {
    const run = await project.astro(['sync']);
    assert.notEqual(run.code, 0, `astro sync accepted a lesson without frontmatter:\n${run.output}`);
    assert.match(run.output, /98-no-frontmatter/, run.output);
    assert.match(run.output, /\btitle\b/, run.output);
  } finally {
    await rm(file, { force: true });
  }
});
