// @ts-check
import mdx from '@astrojs/mdx';
import starlight from '@astrojs/starlight';
import { defineConfig } from 'astro/config';
import { satteri } from '@astrojs/markdown-satteri';
import { runBlocksPlugin } from './src/plugins/run-blocks.ts';

export default defineConfig({
  site: 'http://127.0.0.1:4321',
  trailingSlash: 'ignore',
  build: { format: 'directory' },
  integrations: [
    starlight({
      title: 'Container Labs',
      description: 'What a container really is: Docker basics, namespaces and cgroups, with live terminals.',
      sidebar: [{ label: 'Course', items: [{ autogenerate: { directory: '.' } }] }],
      // Lab blocks and runnable code blocks (src/components/Lab.astro, src/plugins/).
      customCss: ['./src/styles/lab.css'],
    }),
    mdx(),
  ],
  markdown: {
    // ```sh run=container → a Run button (on the Markdown tree, before Expressive Code).
    processor: satteri({ mdastPlugins: [runBlocksPlugin] }),
  },
});
