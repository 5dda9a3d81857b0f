/**
 * Generates `labs/seccomp/profile.json`, the seccomp profile of every lab host, from
 * Docker's default profile (`moby-default.json`: profiles/seccomp/default.json of Debian's
 * golang-github-docker-docker-dev 20.10.24+dfsg1-1+deb12u1, i.e. the profile built into
 * the docker.io engine of Debian 12, re-indented by biome; Apache-2.0, © Docker, Inc.).
 *
 *   node labs/seccomp/generate.ts          # rewrite profile.json
 *   node labs/seccomp/generate.ts --check  # exit 1 if profile.json is stale
 *
 * What changes against Docker's default (see labs/README.md, "The seccomp profile"):
 * - Rules that only apply when the container holds a capability are dropped, and
 *   "unless the container holds capability X" conditions are resolved: a lab host runs
 *   with CapDrop ALL, so the file shows exactly the filter a lab host gets.
 * - io_uring_* are removed from the allow-list (newer moby versions removed them too:
 *   a large kernel attack surface that no lab needs).
 * - Added, so that an unprivileged user can build a nested container: unshare and setns
 *   (only without CLONE_NEWNET, CLONE_NEWCGROUP and CLONE_NEWTIME), mount, umount2,
 *   sethostname, pivot_root. Everything else that the default refuses stays refused.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isDeepStrictEqual, parseArgs } from 'node:util';

export interface SeccompArg {
  index: number;
  value: number;
  valueTwo?: number;
  op: string;
}
export interface SeccompRule {
  names: string[];
  action: string;
  errnoRet?: number;
  args: SeccompArg[] | null;
  comment: string;
  includes: { caps?: string[]; arches?: string[]; minKernel?: string };
  excludes: { caps?: string[]; arches?: string[]; minKernel?: string };
}
export interface SeccompProfile {
  defaultAction: string;
  archMap: unknown[];
  syscalls: SeccompRule[];
}

/** Namespace flags from <linux/sched.h>. */
export const CLONE_NEWCGROUP = 0x02000000;
export const CLONE_NEWNET = 0x40000000;
export const CLONE_NEWTIME = 0x00000080;
/**
 * unshare/setns are allowed only when none of these flags is set. Each namespace kind is
 * kernel code a reader reaches as "root" of a user namespace, so we allow only the kinds
 * the labs use (user, PID, mount, UTS, IPC):
 * - network: netfilter, nf_tables and the rest of the network stack as root;
 * - cgroup: the labs read cgroups, they never need a new cgroup namespace;
 * - time (Linux 5.6, `unshare -T`): offsets for the monotonic and boot-time clocks. No lab
 *   uses it (the namespaces lesson only names it), and the kernel alone would grant it to
 *   the nested container's root or together with a new user namespace: least privilege.
 * WARNING: 0x80 is CLONE_NEWTIME only for unshare(2), setns(2) and clone3(2). In clone(2)
 * the low byte is CSIGNAL, the exit signal, and the kernel takes no time namespace from it
 * (time namespaces come only from unshare and clone3, and clone3 answers ENOSYS here). So
 * the clone rule stays Docker's mask (0x7E020000, every other CLONE_NEW*): adding 0x80
 * there would be meaningless, and a mask on the exit signal is not ours to set.
 */
export const REFUSED_NAMESPACE_FLAGS = CLONE_NEWNET | CLONE_NEWCGROUP | CLONE_NEWTIME;

/** Syscalls removed from the default allow-list. */
export const REMOVED = ['io_uring_enter', 'io_uring_register', 'io_uring_setup'];

/** Our additions, appended after the default's rules. */
export function nestingRules(): SeccompRule[] {
  const noRefusedKinds = (index: number): SeccompArg[] => [
    { index, value: REFUSED_NAMESPACE_FLAGS, valueTwo: 0, op: 'SCMP_CMP_MASKED_EQ' },
  ];
  return [
    {
      names: ['unshare'],
      action: 'SCMP_ACT_ALLOW',
      args: noRefusedKinds(0),
      comment:
        'containerlabs: new user, PID, mount, UTS and IPC namespaces for the nested container; never network, cgroup or time ones',
      includes: {},
      excludes: {},
    },
    {
      names: ['setns'],
      action: 'SCMP_ACT_ALLOW',
      args: noRefusedKinds(1),
      comment:
        'containerlabs: nsenter into the nested container; never into a network, cgroup or time namespace (nstype 0 passes the mask, but joining a namespace owned by the lab host user namespace needs CAP_SYS_ADMIN there, which nobody has)',
      includes: {},
      excludes: {},
    },
    {
      names: ['mount', 'umount2', 'pivot_root', 'sethostname'],
      action: 'SCMP_ACT_ALLOW',
      args: [],
      comment:
        'containerlabs: --mount-proc, tmpfs mounts and the hostname inside the nested user namespace; the kernel still requires CAP_SYS_ADMIN in the namespace that owns the mount or UTS namespace, and the lab host has no capabilities',
      includes: {},
      excludes: {},
    },
  ];
}

/** Derive our profile from Docker's default profile. Pure, deterministic. */
export function buildProfile(mobyDefault: SeccompProfile): SeccompProfile {
  const out: SeccompRule[] = [];
  for (const rule of mobyDefault.syscalls) {
    // Rules granted only with a capability never apply under CapDrop ALL.
    if (rule.includes.caps && rule.includes.caps.length > 0) continue;
    const names = rule.names.filter((n) => !REMOVED.includes(n));
    if (names.length === 0) continue;
    const excludes = { ...rule.excludes };
    // "Unless the container has CAP_X": it never has, so the condition always holds.
    delete excludes.caps;
    out.push({ ...rule, names, excludes });
  }
  out.push(...nestingRules());
  return { defaultAction: mobyDefault.defaultAction, archMap: mobyDefault.archMap, syscalls: out };
}

export const here = import.meta.dirname;
export const profilePath = join(here, 'profile.json');
export const mobyDefaultPath = join(here, 'moby-default.json');

/** The profile generate.ts makes from moby-default.json. */
export function generatedProfile(): SeccompProfile {
  return buildProfile(JSON.parse(readFileSync(mobyDefaultPath, 'utf8')) as SeccompProfile);
}

/** Compared as JSON values, not text: `npm run format` (biome) may re-indent both files. */
export function profileIsCurrent(): boolean {
  return isDeepStrictEqual(JSON.parse(readFileSync(profilePath, 'utf8')), generatedProfile());
}

if (import.meta.main) {
  let check = false;
  try {
    check = parseArgs({ options: { check: { type: 'boolean', default: false } } }).values.check;
  } catch (err) {
    console.error(`${(err as Error).message}\nusage: node labs/seccomp/generate.ts [--check]`);
    process.exit(2);
  }
  if (check) {
    if (!profileIsCurrent()) {
      console.error('labs/seccomp/profile.json is stale: run node labs/seccomp/generate.ts');
      process.exit(1);
    }
    console.log('labs/seccomp/profile.json is up to date');
  } else {
    writeFileSync(profilePath, `${JSON.stringify(generatedProfile(), null, 2)}\n`);
    // Keep the file as the repository's formatter wants it, when the formatter is here.
    const biome = join(here, '..', '..', 'node_modules', '.bin', 'biome');
    if (existsSync(biome)) spawnSync(biome, ['format', '--write', profilePath], { stdio: 'ignore' });
    console.log(`wrote ${profilePath}`);
  }
}
