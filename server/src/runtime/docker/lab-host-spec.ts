/**
 * The Docker Engine API bodies for a lab host: `POST /containers/create` (labHostSpec) and
 * `POST /containers/{id}/exec` (execSpec). Pure functions: our own types in, plain JSON out;
 * the adapter passes them to dockerode unchanged. What each setting is for, and what was
 * seen working on Debian 12 / Docker 20.10 / cgroup v1: labs/README.md, "The lab host
 * container".
 *
 * A lab host runs the lab image's init (labs/_common/rootfs/usr/local/sbin/lab-init) as the
 * unprivileged reader, under a uid of its own (the adapter picks it: uid-allocator.ts), with
 * no capabilities. The init builds the nested container
 * with user, PID, mount, UTS and IPC namespaces (unshare -U -r -p -f -m -u -i --mount-proc);
 * the seccomp profile (labs/seccomp/profile.json) allows exactly that much nesting.
 */

import { type LabDef, parseSize, type TerminalDef } from '../../../../labs/schema.ts';
import seccompProfile from '../../../../labs/seccomp/profile.json' with { type: 'json' };
import { toLabels } from './labels.ts';

export const LAB_HOSTNAME = 'labhost';
export const LAB_HOME = '/home/reader';

/** uid_t is 32 bits; (uid_t)-1 means "no change" to the kernel, and 0 is root. */
const MAX_UID = 4_294_967_294;

/** The user of a lab host and of every exec in it: `uid:gid`, gid = uid. */
export function labUser(uid: number): string {
  if (!Number.isInteger(uid) || uid < 1 || uid > MAX_UID) {
    throw new Error(`lab host uid must be an integer from 1 to ${MAX_UID}, not ${uid}`);
  }
  return `${uid}:${uid}`;
}

/** The seccomp profile as Docker wants it in SecurityOpt: compact JSON text. */
export const SECCOMP_PROFILE_JSON: string = JSON.stringify(seccompProfile);

const MiB = 1024 * 1024;

export interface LabHostSpecInput {
  lab: LabDef;
  /** The lab's image, `containerlabs/lab-<id>:<hash>` (labs/images.ts labImageTag). */
  image: string;
  sessionId: string;
  /**
   * The reader's uid (and gid) on the machine, this lab host's alone: the kernel counts
   * user namespaces, inotify instances, processes (RLIMIT_NPROC) and more per uid, so
   * sandboxes sharing one would share those allowances. The image's `reader` gets it at
   * start (lab-init writes /etc/passwd), so names stay the same whatever the number.
   */
  uid: number;
  /** The server instance that asks for it (a label: its leftovers are removed at start). */
  instance: string;
  /** Made ahead for the warm pool (a label). */
  pooled: boolean;
  /** When the session expires (informational label; the server enforces it). */
  expiresAt: Date;
  /**
   * The hard deadline (a label, read by any server's reaper), and the lab host's lifetime
   * in seconds until then: its init exits by itself after this long, even if the server is
   * gone (AutoRemove then deletes the container, or any server's reaper). Set a little
   * beyond the session's own expiry, so the server normally stops it first.
   */
  deadline: Date;
  hardDeadlineSeconds: number;
  /** The host's first lease in seconds (lab-init ends it then unless lab-lease renews it); default: the hard deadline. */
  leaseSeconds?: number;
  /** Extra labels, for tests that mark their own containers; ours win on conflict. */
  labels?: Record<string, string>;
  /**
   * AppArmor profile for engines that apply one (Ubuntu and other AppArmor hosts): Docker's
   * `docker-default` denies mount(2), which the nested container needs. Undefined: leave
   * the engine's default (hosts without AppArmor ignore it anyway).
   */
  apparmorProfile?: string;
  /**
   * The engine deletes the container when it stops (default true). False on an engine with
   * live-restore, which would otherwise remove running ones when it restarts (DockerRuntime).
   */
  autoRemove?: boolean;
}

/** Subset of the Engine API's ContainerCreateRequest that we set (API 1.41). */
export interface ContainerCreateBody {
  Image: string;
  Hostname: string;
  User: string;
  WorkingDir: string;
  Entrypoint: string[];
  Cmd: string[];
  Env: string[];
  Labels: Record<string, string>;
  AttachStdin: boolean;
  AttachStdout: boolean;
  AttachStderr: boolean;
  OpenStdin: boolean;
  Tty: boolean;
  NetworkDisabled: boolean;
  StopSignal: string;
  StopTimeout: number;
  HostConfig: Record<string, unknown>;
}

export interface ExecCreateBody {
  Cmd: string[];
  User: string;
  WorkingDir: string;
  Env: string[];
  Tty: boolean;
  AttachStdin: boolean;
  AttachStdout: boolean;
  AttachStderr: boolean;
  DetachKeys: string;
}

function tmpfsOptions(bytes: number, mode: string, extra: string[] = []): string {
  // Docker's default tmpfs options are noexec,nosuid,nodev; readers may run their own
  // scripts from /tmp and home, so `exec` (setuid stays off: nosuid).
  return ['rw', 'exec', 'nosuid', 'nodev', `size=${bytes}`, `mode=${mode}`, ...extra].join(',');
}

/** `POST /containers/create` body of one lab host. Throws on impossible input. */
export function labHostSpec(input: LabHostSpecInput): ContainerCreateBody {
  const { lab, image, sessionId, expiresAt, deadline, hardDeadlineSeconds, uid } = input;
  const user = labUser(uid);
  if (!image) throw new Error('labHostSpec: image is required');
  // Only a label value, but keep it plain (base64url ids may start with - or _).
  if (!/^[A-Za-z0-9_.-]{1,128}$/.test(sessionId)) {
    throw new Error(`labHostSpec: bad session id ${JSON.stringify(sessionId)}`);
  }
  if (!Number.isInteger(hardDeadlineSeconds) || hardDeadlineSeconds < 1) {
    throw new Error(
      `labHostSpec: hardDeadlineSeconds must be a positive integer, not ${hardDeadlineSeconds}`,
    );
  }
  const leaseSeconds = Math.min(input.leaseSeconds ?? hardDeadlineSeconds, hardDeadlineSeconds);
  if (!Number.isInteger(leaseSeconds) || leaseSeconds < 1) {
    throw new Error(`labHostSpec: leaseSeconds must be a positive integer, not ${input.leaseSeconds}`);
  }
  if (Number.isNaN(expiresAt.getTime())) throw new Error('labHostSpec: expiresAt is not a valid date');
  if (Number.isNaN(deadline.getTime())) throw new Error('labHostSpec: deadline is not a valid date');

  const memory = parseSize(lab.limits.memory);
  const tmp = parseSize(lab.limits.tmp);

  return {
    Image: image,
    Hostname: LAB_HOSTNAME,
    User: user,
    WorkingDir: LAB_HOME,
    Entrypoint: ['/usr/local/sbin/lab-init'],
    Cmd: [],
    Env: [
      `LAB_ID=${lab.id}`,
      // The lab author's shell text, run by sh -c as PID 1 of the nested container.
      `LAB_APP_CMD=${lab.app.command}`,
      `LAB_APP_HOSTNAME=${lab.app.hostname}`,
      `LAB_DEADLINE_SECONDS=${hardDeadlineSeconds}`,
      `LAB_LEASE_SECONDS=${leaseSeconds}`,
      'LANG=C.UTF-8',
      // Docker takes HOME from the image's /etc/passwd, which points into /run/lab: a
      // tmpfs the engine does not see from outside, so it would fall back to "/".
      `HOME=${LAB_HOME}`,
    ],
    Labels: {
      ...input.labels,
      ...toLabels({
        sessionId,
        lab: lab.id,
        instance: input.instance,
        expiresAt,
        deadline,
        pooled: input.pooled,
        uid,
      }),
    },
    AttachStdin: false,
    AttachStdout: false,
    AttachStderr: false,
    OpenStdin: false,
    Tty: false,
    NetworkDisabled: false, // NetworkMode none already leaves only `lo`
    // lab-init traps SIGTERM, stops the nested container and exits at once.
    StopSignal: 'SIGTERM',
    StopTimeout: 3,
    HostConfig: {
      AutoRemove: input.autoRemove ?? true,
      RestartPolicy: { Name: 'no' },
      Init: false, // lab-init is PID 1 and reaps zombies itself

      // Isolation: a loopback-only network namespace, no ports, no devices.
      NetworkMode: 'none',
      PortBindings: {},
      PublishAllPorts: false,
      Devices: [],
      Privileged: false,
      IpcMode: 'private',
      // cgroup v1 defaults to the host's cgroup namespace; a private one makes
      // /proc/self/cgroup read "/" like on cgroup v2 and hides the host's cgroup paths.
      CgroupnsMode: 'private',

      // Privileges: none. The nested container gets its "root" from a user namespace.
      CapDrop: ['ALL'],
      CapAdd: [],
      SecurityOpt: [
        'no-new-privileges:true',
        `seccomp=${SECCOMP_PROFILE_JSON}`,
        ...(input.apparmorProfile ? [`apparmor=${input.apparmorProfile}`] : []),
      ],
      // WARNING: the kernel lets a user namespace mount a fresh procfs only if the proc
      // mount it can already see is fully visible: nothing mounted over any part of it
      // (fs/namespace.c, mount_too_revealing / mnt_already_visible). Docker's default
      // masks (/proc/kcore, /proc/keys, /proc/timer_list, ... bind-mounted over with
      // /dev/null or an empty tmpfs) and read-only re-mounts (/proc/sys, /proc/irq, ...)
      // are such mounts, so `unshare --mount-proc` fails with EPERM unless both lists are
      // empty (the CLI's --security-opt systempaths=unconfined). What still guards those
      // files: an unprivileged uid without capabilities (kcore is root-only, /proc/sys is root-owned
      // and read-only to others) and, inside, a user namespace that owns nothing of the
      // host. The sysfs masks do not matter to the procfs check, so they stay.
      MaskedPaths: ['/sys/firmware', '/sys/devices/virtual/powercap'],
      ReadonlyPaths: [],

      // Filesystem: the image is read-only; small tmpfs mounts for what must be written.
      ReadonlyRootfs: true,
      Tmpfs: {
        '/tmp': tmpfsOptions(tmp, '1777'),
        [LAB_HOME]: tmpfsOptions(8 * MiB, '0755', [`uid=${uid}`, `gid=${uid}`]),
        // lab-init's state (unshare PID, readiness), shared with lab-shell and the box.
        '/run/lab': [
          'rw',
          'noexec',
          'nosuid',
          'nodev',
          `size=${1 * MiB}`,
          'mode=0755',
          `uid=${uid}`,
          `gid=${uid}`,
        ].join(','),
      },
      ShmSize: 8 * MiB,

      // Resources: every process of the session, nested container included, counts.
      Memory: memory,
      MemorySwap: memory, // equal: no swap
      NanoCpus: Math.round(lab.limits.cpus * 1e9),
      PidsLimit: lab.limits.pids,
      // Prefer the lab hosts' processes when the machine itself runs out of memory.
      OomScoreAdj: 500,
      Ulimits: [
        { Name: 'nofile', Soft: 1024, Hard: 1024 },
        { Name: 'core', Soft: 0, Hard: 0 },
        // Not nproc. Every lab host has a uid of its own, so the processes of that uid are
        // exactly the lab host's, which PidsLimit already bounds. Set to the pids limit, it
        // would even hide the pids limit: fork() checks RLIMIT_NPROC before the pids
        // cgroup (kernel/fork.c copy_process), so the cgroups lab's fork bomb was refused
        // by the rlimit and pids.events counted 0 refusals instead of 74.
      ],
      LogConfig: { Type: 'json-file', Config: { 'max-size': '1m', 'max-file': '1' } },
    },
  };
}

/** The command that renews a lab host's lease (the seconds go in its environment, LAB_LEASE_SECONDS). */
export const LEASE_COMMAND: readonly string[] = Object.freeze(['/usr/local/sbin/lab-lease']);

/**
 * `POST /containers/{id}/exec` body of one terminal: a login bash for the reader, on the
 * lab host (`host`) or inside the nested container (`container`, via nsenter), as the lab
 * host's uid.
 */
export function execSpec(terminal: TerminalDef, uid: number): ExecCreateBody {
  return {
    Cmd: ['/usr/local/bin/lab-shell', terminal.target],
    // The lab host's own uid: any other would be a stranger there (and share nothing).
    User: labUser(uid),
    WorkingDir: LAB_HOME,
    // LAB_TERMINAL: the shell runs under dtach, and a later exec of the same terminal
    // (another server's, after a restart) attaches to it (lab-shell).
    Env: ['TERM=xterm-256color', 'LANG=C.UTF-8', `HOME=${LAB_HOME}`, `LAB_TERMINAL=${terminal.name}`],
    Tty: true,
    AttachStdin: true,
    AttachStdout: true,
    AttachStderr: true,
    // Docker's default detach keys (ctrl-p,ctrl-q) would swallow a reader's ctrl-p
    // (previous command in bash). This sequence is nearly impossible to type by chance.
    DetachKeys: 'ctrl-^,ctrl-@,ctrl-^',
  };
}
