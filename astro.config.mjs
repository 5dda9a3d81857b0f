// @ts-check

import { satteri } from '@astrojs/markdown-satteri';
import mdx from '@astrojs/mdx';
import starlight from '@astrojs/starlight';
import { defineConfig } from 'astro/config';
import { runBlockIndexIntegration } from './src/plugins/run-block-index.ts';
import { runBlocksPlugin } from './src/plugins/run-blocks.ts';

export default defineConfig({
  site: 'http://127.0.0.1:4321',
  trailingSlash: 'ignore',
  build: { format: 'directory' },
  integrations: [
    starlight({
      title: 'Container Labs',
      description: 'What a container really is: Docker basics, namespaces and cgroups, with live terminals.',
      // Lessons live in the top-level content/ folder, so their ids start with `content/`.
      sidebar: [{ label: 'Course', items: [{ autogenerate: { directory: 'content' } }] }],
      favicon: '/favicon.svg',
      components: {
        // Starlight's own, with the shortcut hint hidden from the accessible name (WCAG 2.5.3).
        Search: './src/components/StarlightSearch.astro',
        // Starlight's, plus keyboard access to code blocks the first frame skips (src/styles/lesson.css).
        MarkdownContent: './src/components/MarkdownContent.astro',
      },
      // Lab blocks and runnable code blocks (src/components/Lab.astro, src/plugins/); what the
      // first frame of a lesson skips (src/styles/lesson.css).
      customCss: ['./src/styles/lab.css', './src/styles/lesson.css'],
    }),
    mdx(),
    // Every runnable block placed in its lab, or the build stops (tests and the recorder read the same index).
    runBlockIndexIntegration(),
  ],
  markdown: {
    // ```sh run=container expect="…" → a Run button (on the Markdown tree, before Expressive Code).
    processor: satteri({ mdastPlugins: [runBlocksPlugin] }),
  },
});
