import { defineCollection } from 'astro:content';
import { i18nLoader } from '@astrojs/starlight/loaders';
import { docsSchema, i18nSchema } from '@astrojs/starlight/schema';
import { glob } from 'astro/loaders';

// Lessons live in the top-level `content/` folder (not Starlight's default
// `src/content/docs`), so authors find the course at the root of the repository.
export const collections = {
  docs: defineCollection({
    loader: glob({ base: './content', pattern: ['**/[^_]*.{md,mdx}', '!README.md'] }),
    schema: docsSchema(),
  }),
  // Starlight's UI strings (none overridden yet: src/content/i18n/ may add some).
  i18n: defineCollection({ loader: i18nLoader(), schema: i18nSchema() }),
};
