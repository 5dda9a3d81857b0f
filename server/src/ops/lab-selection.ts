/**
 * The operator's say over the labs: which are offered (CL_LABS) and resource limits that
 * replace lab.yaml's (CL_LAB_MEMORY, CL_LAB_CPUS, CL_LAB_PIDS, CL_LAB_TMP). Applied once in
 * main.ts to the loaded definitions, so the lab host spec (built from `lab.limits`) and
 * everything after it see ordinary LabDefs.
 */
import { LabDef } from '../../../labs/schema.ts';
import { ConfigError } from '../config.ts';

export interface LabSelection {
  /** Enabled lab ids; empty means every lab. */
  labs: readonly string[];
  labLimits: Readonly<Partial<LabDef['limits']>>;
}

/** The labs to serve, with overrides applied; throws ConfigError for an unknown id. */
export function selectLabs(all: readonly LabDef[], sel: LabSelection): LabDef[] {
  const known = all.map((l) => l.id);
  const unknown = sel.labs.filter((id) => !known.includes(id));
  if (unknown.length > 0) {
    throw new ConfigError(
      `invalid configuration:\n  CL_LABS: no lab ${unknown.map((u) => `"${u}"`).join(', ')} (labs: ${known.join(', ')})`,
    );
  }
  const chosen = sel.labs.length === 0 ? all : all.filter((l) => sel.labs.includes(l.id));
  return chosen.map((lab) => {
    const limits = { ...lab.limits, ...sel.labLimits };
    // Validate the result with the labs' own schema (pids 16-4096, cpus ≤ 4, sizes).
    const r = LabDef.safeParse({ ...lab, limits });
    if (!r.success) {
      const first = r.error.issues[0];
      throw new ConfigError(
        `invalid configuration:\n  CL_LAB_*: ${first?.path.join('.') ?? 'limits'}: ${first?.message ?? 'invalid'}`,
      );
    }
    return r.data;
  });
}
