/**
 * The OCI bundle of a real lab host, for lesson 9: the `config.json` that dockerd wrote
 * and runc read when it created one, taken from a run on the development machine and
 * committed as labs/_data/oci-bundle.json (the lesson says when and with which engine).
 *
 * Reading a bundle needs root on the engine's own machine (the shim's state directory),
 * so this is a script to run by hand, not part of the site's build:
 *
 *   sudo node labs/oci-bundle.ts --write [--lab docker-run]
 *
 * It starts one lab host with the server's own create body (labHostSpec), copies its
 * config.json, stops it, and shortens the one long part: the seccomp profile's rules
 * become counts (the profile itself is labs/seccomp/profile.json).
 */
import { randomInt } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

/** Where containerd keeps a task's bundle: Docker's own containerd, or a system one. */
export const BUNDLE_DIRS = [
  '/run/docker/containerd/daemon/io.containerd.runtime.v2.task/moby',
  '/run/containerd/io.containerd.runtime.v2.task/moby',
];

export interface OciBundleSnapshot {
  takenAt: string;
  lab: string;
  engine: { docker: string; containerd?: string; runc?: string; kernel?: string };
  /** The bundle's config.json, seccomp rules summed up. */
  config: Record<string, unknown>;
}

interface SeccompRule {
  names?: string[];
  action?: string;
}

/** config.json with `linux.seccomp.syscalls` replaced by counts per action. */
export function shortenConfig(config: Record<string, unknown>): Record<string, unknown> {
  const linux = config.linux as Record<string, unknown> | undefined;
  const seccomp = linux?.seccomp as
    | { defaultAction?: string; architectures?: string[]; syscalls?: SeccompRule[] }
    | undefined;
  if (!linux || !seccomp?.syscalls) return config;
  const byAction: Record<string, number> = {};
  for (const rule of seccomp.syscalls) {
    const a = rule.action ?? '?';
    byAction[a] = (byAction[a] ?? 0) + (rule.names?.length ?? 0);
  }
  return {
    ...config,
    linux: {
      ...linux,
      seccomp: {
        defaultAction: seccomp.defaultAction,
        architectures: seccomp.architectures,
        syscalls: `${seccomp.syscalls.length} rules naming ${Object.entries(byAction)
          .map(([a, n]) => `${n} system call${n === 1 ? '' : 's'} ${a}`)
          .join(', ')} (labs/seccomp/profile.json)`,
      },
    },
  };
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: { write: { type: 'boolean' }, lab: { type: 'string', default: 'docker-run' } },
  });
  const { default: Docker } = await import('dockerode');
  const { labImageTag } = await import('./images.ts');
  const { loadLabs } = await import('./load.ts');
  const { labHostSpec } = await import('../server/src/runtime/docker/lab-host-spec.ts');
  const docker = new Docker();
  const lab = (await loadLabs()).find((l) => l.id === values.lab);
  if (!lab) throw new Error(`no lab ${values.lab}`);
  const seconds = 120;
  const spec = labHostSpec({
    lab,
    image: labImageTag(lab.id),
    sessionId: `oci-bundle-${Date.now()}`,
    instance: 'oci-bundle-snapshot',
    pooled: false,
    uid: 2_000_000_000 + randomInt(100_000),
    expiresAt: new Date(Date.now() + seconds * 1000),
    deadline: new Date(Date.now() + seconds * 1000),
    hardDeadlineSeconds: seconds,
  });
  const c = await docker.createContainer(spec);
  try {
    await c.start();
    const dir = BUNDLE_DIRS.map((d) => join(d, c.id)).find((d) => existsSync(join(d, 'config.json')));
    if (!dir)
      throw new Error(
        `no bundle of ${c.id} under ${BUNDLE_DIRS.join(' or ')} (run as root on the engine's machine)`,
      );
    const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
    const v = (await docker.version()) as {
      Version: string;
      KernelVersion?: string;
      Components?: { Name: string; Version: string }[];
    };
    const component = (name: string) => v.Components?.find((x) => x.Name.toLowerCase() === name)?.Version;
    const snap: OciBundleSnapshot = {
      takenAt: new Date().toISOString(),
      lab: lab.id,
      engine: {
        docker: v.Version,
        containerd: component('containerd'),
        runc: component('runc'),
        kernel: v.KernelVersion,
      },
      config: shortenConfig(config),
    };
    const text = `${JSON.stringify(snap, null, 2)}\n`;
    const out = join(import.meta.dirname, '_data', 'oci-bundle.json');
    if (values.write) {
      writeFileSync(out, text);
      console.log(`wrote ${out} (${dir}/config.json)`);
    } else process.stdout.write(text);
  } finally {
    await c.remove({ force: true }).catch(() => {});
  }
}
