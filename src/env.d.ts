// Types for the Starlight internals that src/components/StarlightSearch.astro (a copy of
// Starlight's own component) uses: Astro.locals.t and two of Starlight's virtual modules.
/// <reference path="../node_modules/@astrojs/starlight/dist/global.d.ts" />

declare module 'virtual:starlight/project-context' {
  const project: { trailingSlash: 'always' | 'never' | 'ignore'; build: { format: string } };
  export default project;
}

declare module 'virtual:starlight/pagefind-config' {
  export const pagefindUserConfig: Record<string, unknown>;
}
