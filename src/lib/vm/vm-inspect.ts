/**
 * The kernel view and the step checks of an in-browser lab, judged in the page with the
 * lab server's own code: the guest runs the server's snapshot scripts unchanged
 * (server/src/inspect/snapshot.ts, baked into the VM by vm/lib/rootfs.ts), this parses
 * their output with the server's parsers, and checks.ts judges, so both modes give the same
 * answers for the same kernel facts.
 */
import type { CheckDef } from '../../../labs/schema.ts';
import { runCheck } from '../../../server/src/inspect/checks.ts';
import { type NetworkSnapshot, parseNetwork } from '../../../server/src/inspect/network.ts';
import { type CgroupSnapshot, parseCgroup, parseProcesses } from '../../../server/src/inspect/snapshot.ts';
import type { CgroupReading, CheckResult, ProcessSnapshot } from '../lab-api.ts';

export type VmCheckDef = CheckDef;

const dec = new TextDecoder();

export function parseVmProcesses(output: Uint8Array, now = new Date()): ProcessSnapshot {
  return parseProcesses(dec.decode(output), now);
}

export function parseVmCgroup(output: Uint8Array, now = new Date()): CgroupSnapshot {
  return parseCgroup(dec.decode(output), now);
}

/**
 * The cgroup reading the page shows: the snapshot plus CPU use since the previous reading,
 * as a share of one core (as the lab server computes it, server/src/routes/inspect.ts).
 */
export function cgroupReading(
  snap: CgroupSnapshot,
  prev: { at: number; usage: number } | undefined,
): CgroupReading {
  const now = Date.parse(snap.takenAt);
  let percent: number | null = null;
  if (prev && snap.cpu.usageSeconds !== null && now > prev.at)
    percent = Math.max(0, ((snap.cpu.usageSeconds - prev.usage) / ((now - prev.at) / 1000)) * 100);
  return { ...snap, cpu: { ...snap.cpu, percent } };
}

export interface VmInspector {
  processes(): Promise<ProcessSnapshot>;
  cgroup(): Promise<CgroupSnapshot>;
  network(): Promise<string>;
}

/** Runs one check of the lab against the VM, with checks.ts (the server's judge). */
export async function runVmCheck(
  def: CheckDef,
  vm: VmInspector,
  answer: string | undefined,
): Promise<CheckResult> {
  return runCheck(
    def,
    {
      processes: () => vm.processes(),
      cgroup: () => vm.cgroup(),
      // No browser lab has a mount check (lesson 08's overlay labs run on the server only).
      mounts: () => Promise.reject(new Error('Mount checks run only on the lab server.')),
      network: async (): Promise<NetworkSnapshot> => parseNetwork(await vm.network()),
    },
    answer,
  );
}
