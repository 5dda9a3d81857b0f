/** Loads and validates every `labs/<id>/lab.yaml`. */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse } from 'yaml';
import { z } from 'zod';
import { LabDef } from './schema.ts';

export class LabDefinitionError extends Error {
  readonly file: string;
  constructor(file: string, message: string) {
    super(`${file}: ${message}`);
    this.name = 'LabDefinitionError';
    this.file = file;
  }
}

/** Validate one lab's YAML text; throws LabDefinitionError with every problem listed. */
export function parseLab(file: string, text: string, folderId?: string): LabDef {
  let raw: unknown;
  try {
    raw = parse(text);
  } catch (err) {
    throw new LabDefinitionError(file, `not valid YAML: ${(err as Error).message}`);
  }
  const r = LabDef.safeParse(raw);
  if (!r.success) throw new LabDefinitionError(file, `\n${z.prettifyError(r.error)}`);
  if (folderId !== undefined && r.data.id !== folderId) {
    throw new LabDefinitionError(file, `id "${r.data.id}" must equal the folder name "${folderId}"`);
  }
  return r.data;
}

/**
 * The labs the lab server runs (`modes` includes `server`) under `dir` (default: this
 * folder), sorted by id: what the server, the image build and their tests use.
 */
export async function loadLabs(dir: string = import.meta.dirname): Promise<LabDef[]> {
  return (await loadAllLabs(dir)).filter((l) => l.modes.includes('server'));
}

/** Every lab under `dir`, whatever its modes (the site, the in-browser VM's build), sorted by id. */
export async function loadAllLabs(dir: string = import.meta.dirname): Promise<LabDef[]> {
  const entries = await readdir(dir, { withFileTypes: true });
  const labs: LabDef[] = [];
  for (const e of entries) {
    if (!e.isDirectory() || e.name.startsWith('_') || e.name.startsWith('.')) continue;
    const file = join(dir, e.name, 'lab.yaml');
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch {
      continue; // a folder without lab.yaml (e.g. shared image parts) is not a lab
    }
    labs.push(parseLab(file, text, e.name));
  }
  return labs.sort((a, b) => a.id.localeCompare(b.id));
}
