/**
 * Build-time lab facts for `<Lab>` (runs in Node while Astro renders pages, never in the
 * browser): the lab definitions from `labs/<id>/lab.yaml`, and which recordings exist.
 * Lessons are static, so a lab block knows its terminals without asking the server.
 */
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { loadAllLabs } from '../../labs/load.ts';
import type { LabDef } from '../../labs/schema.ts';
import { readCurrent } from '../../vm/lib/manifest.ts';

// WARNING: resolve from the project root, not import.meta: Astro bundles this module into
// its build output, where import.meta.dirname no longer points at src/lib.
const root = process.cwd();

let labs: Promise<LabDef[]> | undefined;

/** The definition of lab `id`; a build error names the known ids if there is none. */
export async function labDefinition(id: string): Promise<LabDef> {
  if (!labs || import.meta.env?.DEV) labs = loadAllLabs(join(root, 'labs'));
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

/**
 * The in-browser mode of a lab for `<Lab>` (build time): the URLs and sizes of its VM's
 * files and the checks the page judges itself, or why the mode is missing. Read from the
 * VM build the site uses (vm/build.ts, `.cache/vm/current.json`).
 */
export function vmForLab(
  lab: LabDef,
  base: string,
): { config: string; bytes: number } | { missing: string } | undefined {
  if (!lab.modes.includes('browser')) return undefined;
  const cur = readCurrent(root);
  if ('reason' in cur) return { missing: cur.reason };
  const m = cur.manifest;
  const state = m.labs[lab.id];
  if (!state)
    return { missing: `the VM build ${m.hash} has no state for lab ${lab.id}: run \`npm run build\`` };
  const url = (f: string) => `${base}/vm/${f}`;
  const wasmBytes = statSync(join(root, 'node_modules', 'v86', 'build', 'v86.wasm')).size;
  const assets = {
    state: { url: url(state.file), bytes: state.bytes },
    bios: { url: url(m.bios.file), bytes: m.bios.bytes },
    vgaBios: { url: url(m.vgaBios.file), bytes: m.vgaBios.bytes },
    memoryBytes: m.memoryBytes,
    vgaMemoryBytes: m.vgaMemoryBytes,
    wasmBytes,
  };
  return {
    config: JSON.stringify({ assets, checks: lab.checks }),
    bytes: state.bytes + m.bios.bytes + m.vgaBios.bytes + wasmBytes,
  };
}
