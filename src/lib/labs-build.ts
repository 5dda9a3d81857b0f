/**
 * Build-time lab facts for `<Lab>` (runs in Node while Astro renders pages, never in the
 * browser): the lab definitions from `labs/<id>/lab.yaml`, and which recordings exist.
 * Lessons are static, so a lab block knows its terminals without asking the server.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { loadLabs } from '../../labs/load.ts';
import type { LabDef } from '../../labs/schema.ts';

// WARNING: resolve from the project root, not import.meta: Astro bundles this module into
// its build output, where import.meta.dirname no longer points at src/lib.
const root = process.cwd();

let labs: Promise<LabDef[]> | undefined;

/** The definition of lab `id`; a build error names the known ids if there is none. */
export async function labDefinition(id: string): Promise<LabDef> {
  if (!labs || import.meta.env?.DEV) labs = loadLabs(join(root, 'labs'));
  const all = await labs;
  const lab = all.find((l) => l.id === id);
  if (!lab) {
    throw new Error(
      `<Lab id="${id}">: no labs/${id}/lab.yaml. Known labs: ${all.map((l) => l.id).join(', ') || 'none'}.`,
    );
  }
  return lab;
}

/**
 * URL of the recorded session of one terminal of a lesson's lab block
 * (`public/recordings/<lesson>/<lab>-<terminal>.cast`, made by scripts/record-labs.ts from
 * that lesson's own runnable blocks), if recorded.
 */
export function recordingUrl(lesson: string, labId: string, terminal: string): string | undefined {
  const file = `${lesson}/${labId}-${terminal}.cast`;
  return existsSync(join(root, 'public', 'recordings', file)) ? `/recordings/${file}` : undefined;
}
