/**
 * The Docker Engine adapter: the only module that imports dockerode. It speaks the Engine
 * API directly (never the CLI, which costs ~100 ms a call) and maps engine failures to our
 * error codes.
 */
import { PassThrough } from 'node:stream';
import Docker from 'dockerode';
import { labImageTag } from '../../../../labs/images.ts';
import type { LabDef, TerminalDef } from '../../../../labs/schema.ts';
import { AppError, ENGINE_HELP } from '../../errors.ts';
import type {
  EngineInfo,
  LabHost,
  LabHostEvent,
  LabHostRequest,
  LabHostSummary,
  Runtime,
  TerminalProcess,
} from '../runtime.ts';
import { type ApparmorCheck, LAB_HOST_PROFILE, LOAD_PROFILE_COMMAND } from './apparmor.ts';
import { execSpec, LAB_HOME, LEASE_COMMAND, labHostSpec, labUser } from './lab-host-spec.ts';
import { fromLabels, LABELS } from './labels.ts';
import { type ListedHost, UidAllocator, type UidRange } from './uid-allocator.ts';

/**
 * Where lab hosts' uids come from when CL_LAB_UIDS is `auto`.
 *
 * Rootful engine without userns-remap: container uids are the machine's. 2 000 000 000 and
 * up is far above every uid `useradd` hands out, subordinate ranges included
 * (/etc/subuid; SUB_UID_MAX is 600 100 000 by default), above systemd-nspawn's container
 * uids (up to 1 879 048 191) and below 2^31, which some tools still read as signed.
 *
 * Rootless engine, or userns-remap: container uids are mapped into a subordinate range of
 * usually 65 536 uids, and an unmapped uid cannot run, so pick inside it: above the
 * image's system and first human uids and the server image's own user (10001, which
 * shares the engine's mapping when the server runs as a container there), below 60000
 * and `nobody` (65534).
 */
export const AUTO_LAB_UIDS: Readonly<{ rootful: UidRange; namespaced: UidRange }> = Object.freeze({
  rootful: Object.freeze({ first: 2_000_000_000, last: 2_000_099_999 }),
  namespaced: Object.freeze({ first: 20_000, last: 59_999 }),
});
const EXEC_OUTPUT_CAP = 1024 * 1024;

interface DockerErrorLike {
  statusCode?: number;
  code?: string;
  message?: string;
  json?: { message?: string };
}

function engineDown(err: unknown): boolean {
  const code = (err as DockerErrorLike)?.code;
  return (
    code === 'ECONNREFUSED' ||
    code === 'ENOENT' ||
    code === 'EACCES' ||
    code === 'ETIMEDOUT' ||
    code === 'EPIPE' ||
    code === 'ECONNRESET'
  );
}

function message(err: unknown): string {
  const e = err as DockerErrorLike;
  return e?.json?.message ?? e?.message ?? String(err);
}

/** Map an engine failure to an AppError (5xx details stay in the log via `cause`). */
function mapError(err: unknown, what: string): AppError {
  if (err instanceof AppError) return err;
  if (engineDown(err)) {
    return new AppError('engine_unavailable', `The Docker engine is not reachable. ${ENGINE_HELP}`, {
      cause: err,
      retryAfter: 30,
    });
  }
  return new AppError('internal', `${what} failed`, { cause: err });
}

export interface DockerRuntimeOptions {
  /** Passed to dockerode; by default it follows DOCKER_HOST (unix, tcp, ssh) itself. */
  docker?: Docker;
  /** Which image tag runs a lab (default: labs/images.ts, from the lab's files). */
  imageFor?: (labId: string) => Promise<string>;
  /**
   * AppArmor profile for lab hosts. `auto` (default): ours (LAB_HOST_PROFILE, from
   * labs/apparmor/) where the engine applies AppArmor, none elsewhere: Docker's
   * `docker-default` denies the mount(2) the nested container needs. `unconfined` (local
   * mode only: config.ts refuses it elsewhere) or the name of a profile loaded on the
   * engine's host. `checkApparmor` finds out whether the engine can use it.
   */
  apparmorProfile?: string;
  /** The uids lab hosts run as, one per host (`auto`, the default: AUTO_LAB_UIDS). */
  labUids?: 'auto' | UidRange;
  /** The clock a lab host's lifetime is counted from (default: Date.now). */
  now?: () => number;
  /**
   * How long a quick engine call may take (CL_ENGINE_TIMEOUT, default 5 s): the engine
   * probe (version + info) and an exec that names no timeout of its own (the inspection
   * snapshots, checks, the admin's resource figures). Slow or emulated engines need more.
   */
  callTimeoutMs?: number;
}

/** `uid:gid` or `uid` of a container's Config.User, if numeric. */
function uidOfUser(user: string | undefined): number | undefined {
  const m = /^(\d+)(:\d+)?$/.exec(user ?? '');
  return m ? Number(m[1]) : undefined;
}

export class DockerRuntime implements Runtime {
  readonly #docker: Docker;
  readonly #imageFor: (labId: string) => Promise<string>;
  readonly #imageCache = new Map<string, Promise<string>>();
  readonly #apparmorSetting: string;
  #apparmor: Promise<string | undefined> | null = null;
  #autoRemove: Promise<boolean> | null = null;
  #pinned: { profile: string | undefined } | undefined;
  readonly #uidSetting: 'auto' | UidRange;
  readonly #uids: UidAllocator;
  readonly #callTimeoutMs: number;
  /** hostId → the uid its processes run as (from create, a listing's label, or inspect). */
  readonly #hostUids = new Map<string, { uid: number; seq: number }>();
  #seq = 0;
  readonly #now: () => number;

  constructor(opts: DockerRuntimeOptions = {}) {
    this.#docker = opts.docker ?? new Docker();
    this.#imageFor = opts.imageFor ?? (async (labId) => labImageTag(labId));
    this.#apparmorSetting = opts.apparmorProfile ?? 'auto';
    this.#uidSetting = opts.labUids ?? 'auto';
    this.#now = opts.now ?? Date.now;
    this.#callTimeoutMs = opts.callTimeoutMs ?? 5000;
    this.#uids = new UidAllocator({ range: () => this.labUidRange(), list: () => this.#listUids() });
  }

  /** The uids lab hosts get (see DockerRuntimeOptions.labUids). */
  async labUidRange(): Promise<UidRange> {
    if (this.#uidSetting !== 'auto') return this.#uidSetting;
    const i = await this.info();
    if (!i.reachable) {
      throw new AppError('engine_unavailable', `The Docker engine is not reachable. ${ENGINE_HELP}`, {
        cause: new Error(i.error),
        retryAfter: 30,
      });
    }
    return i.rootless || i.usernsRemap ? AUTO_LAB_UIDS.namespaced : AUTO_LAB_UIDS.rootful;
  }

  /** Every lab host on the engine (any instance) and its uid label. */
  async #listUids(): Promise<ListedHost[]> {
    try {
      const list = await this.#docker.listContainers({
        all: true,
        filters: { label: [`${LABELS.managed}=true`] },
      });
      return list.map((c) => ({ hostId: c.Id, uid: fromLabels(c.Labels).uid }));
    } catch (err) {
      throw mapError(err, 'listing lab hosts');
    }
  }

  #remember(hostId: string, uid: number): void {
    this.#hostUids.set(hostId, { uid, seq: ++this.#seq });
  }

  /** The uid a lab host runs as; execs must use it (another uid would be a stranger there). */
  async #uidOf(hostId: string): Promise<number> {
    const known = this.#hostUids.get(hostId);
    if (known) return known.uid;
    let info: Docker.ContainerInspectInfo;
    try {
      info = await this.#docker.getContainer(hostId).inspect();
    } catch (err) {
      const status = (err as DockerErrorLike).statusCode;
      if (status === 404) {
        throw new AppError('session_ended', 'The lab host is gone (it may have expired).', { cause: err });
      }
      throw mapError(err, 'inspecting the lab host');
    }
    const uid = fromLabels(info.Config.Labels).uid ?? uidOfUser(info.Config.User);
    if (uid === undefined || uid === 0) {
      throw new AppError('internal', 'the lab host has no usable uid', {
        cause: new Error(`container ${hostId} runs as ${JSON.stringify(info.Config.User)}`),
      });
    }
    this.#remember(hostId, uid);
    return uid;
  }

  /** The AppArmor profile lab hosts get (see DockerRuntimeOptions.apparmorProfile). */
  apparmorProfile(): Promise<string | undefined> {
    if (this.#pinned) return Promise.resolve(this.#pinned.profile);
    if (this.#apparmorSetting !== 'auto') return Promise.resolve(this.#apparmorSetting);
    this.#apparmor ??= this.#fromInfo(
      (i) => (i.apparmor ? LAB_HOST_PROFILE : undefined),
      () => (this.#apparmor = null),
    );
    return this.#apparmor;
  }

  /** `derive` of the engine's info; `forget` runs if the engine could not be reached, so
   *  that the caller's cached answer is asked again next time. */
  #fromInfo<T>(derive: (i: EngineInfo) => T, forget: () => void): Promise<T> {
    const asked = this.info();
    asked.then((i) => {
      if (!i.reachable) forget();
    });
    return asked.then(derive);
  }

  /**
   * Whether lab hosts get AutoRemove: not on an engine with live-restore. Docker before
   * 24.0.8 (Debian 12's 20.10 among them) kills and removes running AutoRemove containers
   * when it comes back with live-restore (moby/moby#46308): the restart would end every
   * reader's sandbox. There the server removes stopped hosts itself (the `die` event, the
   * reaper's listing). Asked again after the engine restarts (the watch's resync).
   */
  #autoRemoveHosts(): Promise<boolean> {
    this.#autoRemove ??= this.#fromInfo(
      (i) => !(i.reachable && i.liveRestore),
      () => (this.#autoRemove = null),
    );
    return this.#autoRemove;
  }

  /**
   * From now on lab hosts get exactly this profile (undefined: no AppArmor option): what
   * the server decided after `checkApparmor` (server/src/runtime/docker/apparmor.ts).
   */
  pinApparmorProfile(profile: string | undefined): void {
    this.#pinned = { profile };
  }

  /**
   * Whether the engine can run lab hosts under their AppArmor profile. The engine may be
   * on another machine, so this asks it the only way that works from here: a throwaway lab
   * host of `lab` (the real spec, its init swapped for `cat /proc/self/attr/current`) is
   * created with the profile and started; runc refuses a profile its host has not loaded.
   * It carries a deadline a minute away, so any server's reaper removes it should this
   * process die before it does.
   */
  async checkApparmor(lab: LabDef, instance: string): Promise<ApparmorCheck> {
    const i = await this.info();
    if (!i.reachable) {
      throw new AppError('engine_unavailable', `The Docker engine is not reachable. ${ENGINE_HELP}`, {
        cause: new Error(i.error),
      });
    }
    if (!i.apparmor) return { engineApparmor: false };
    const profile = await this.apparmorProfile();
    if (!profile || profile === 'unconfined') {
      return {
        engineApparmor: true,
        profile: profile ?? 'unconfined',
        loaded: true,
        confinement: 'unconfined',
      };
    }
    let image: string;
    try {
      image = await this.#image(lab.id);
    } catch (err) {
      return { engineApparmor: true, profile, detail: message(err) };
    }
    const uid = await this.#uids.reserve();
    let container: Docker.Container | undefined;
    try {
      const deadline = new Date(this.#now() + 60_000);
      const spec = labHostSpec({
        apparmorProfile: profile,
        lab,
        image,
        sessionId: 'apparmor-check',
        uid,
        instance,
        pooled: false,
        expiresAt: deadline,
        deadline,
        hardDeadlineSeconds: 60,
      });
      spec.Entrypoint = ['/bin/cat', '/proc/self/attr/current'];
      spec.Tty = true; // plain output, no stream headers
      spec.HostConfig.AutoRemove = false; // its output is read after it exits
      try {
        container = await this.#docker.createContainer(spec as Docker.ContainerCreateOptions);
      } catch (err) {
        return { engineApparmor: true, profile, detail: message(err) };
      }
      try {
        await container.start();
      } catch (err) {
        const detail = message(err);
        // "unable to apply apparmor profile: apparmor failed to apply profile: write
        // /proc/self/attr/apparmor/exec: no such file or directory" (runc 1.1, Docker 26).
        return /apparmor/i.test(detail)
          ? { engineApparmor: true, profile, loaded: false, detail }
          : { engineApparmor: true, profile, detail };
      }
      await container.wait();
      const confinement = String(await container.logs({ stdout: true, stderr: true })).trim();
      return { engineApparmor: true, profile, loaded: true, confinement };
    } finally {
      await container?.remove({ force: true }).catch(() => {});
      this.#uids.release(uid);
    }
  }

  async info(): Promise<EngineInfo> {
    try {
      const [version, info] = await withTimeout(
        Promise.all([this.#docker.version(), this.#docker.info() as Promise<Record<string, unknown>>]),
        this.#callTimeoutMs,
      );
      const security = Array.isArray(info.SecurityOptions) ? (info.SecurityOptions as string[]) : [];
      return {
        reachable: true,
        version: `docker ${version.Version} (API ${version.ApiVersion})`,
        cgroupVersion: info.CgroupVersion === '2' ? '2' : '1',
        apparmor: security.some((o) => o.includes('name=apparmor')),
        rootless: security.some((o) => o.includes('name=rootless')),
        usernsRemap: security.some((o) => o.includes('name=userns')),
        liveRestore: info.LiveRestoreEnabled === true,
        ...(typeof info.MemTotal === 'number' && info.MemTotal > 0 ? { memoryBytes: info.MemTotal } : {}),
        ...(typeof info.NCPU === 'number' && info.NCPU > 0 ? { cpus: info.NCPU } : {}),
      };
    } catch (err) {
      return { reachable: false, error: message(err) };
    }
  }

  #image(labId: string): Promise<string> {
    let p = this.#imageCache.get(labId);
    if (!p) {
      p = this.#imageFor(labId);
      this.#imageCache.set(labId, p);
      p.catch(() => this.#imageCache.delete(labId));
    }
    return p;
  }

  async createLabHost(req: LabHostRequest): Promise<LabHost> {
    const image = await this.#image(req.lab.id);
    const apparmorProfile = await this.apparmorProfile();
    const autoRemove = await this.#autoRemoveHosts();
    const uid = await this.#uids.reserve();
    const seconds = (d: Date) => Math.max(1, Math.ceil((d.getTime() - this.#now()) / 1000));
    let container: Docker.Container;
    try {
      const spec = labHostSpec({
        apparmorProfile,
        autoRemove,
        lab: req.lab,
        image,
        sessionId: req.sessionId,
        uid,
        instance: req.instance,
        pooled: req.pooled,
        expiresAt: req.expiresAt,
        deadline: req.deadline,
        // lab-init counts from its own start, which is about now.
        hardDeadlineSeconds: seconds(req.deadline),
        ...(req.lease ? { leaseSeconds: Math.min(seconds(req.lease), seconds(req.deadline)) } : {}),
      });
      container = await this.#docker.createContainer(spec as Docker.ContainerCreateOptions);
    } catch (err) {
      this.#uids.release(uid);
      const e = err as DockerErrorLike;
      if (e.statusCode === 404 && /no such image/i.test(message(err))) {
        throw new AppError(
          'image_missing',
          `The image of lab "${req.lab.id}" is not built (${image}). Run \`npm run images\` on the server.`,
          { cause: err },
        );
      }
      throw mapError(err, 'creating the lab host');
    }
    this.#uids.bind(uid, container.id);
    this.#remember(container.id, uid);
    try {
      await container.start();
    } catch (err) {
      await this.removeLabHost(container.id).catch(() => {});
      if (apparmorProfile && /apparmor/i.test(message(err))) {
        // The profile was unloaded after the start-up check (or never checked: no engine then).
        throw new AppError(
          'engine_unavailable',
          `Lab hosts cannot start: the AppArmor profile ${apparmorProfile} is not loaded on the engine's host. ` +
            (apparmorProfile === LAB_HOST_PROFILE
              ? `The operator loads it with ${LOAD_PROFILE_COMMAND}.`
              : ''),
          { cause: err, retryAfter: 60 },
        );
      }
      throw mapError(err, 'starting the lab host');
    }
    return { id: container.id, sessionId: req.sessionId };
  }

  async renewLease(id: string, until: Date): Promise<void> {
    // Seconds from now, not a date: the engine's clock need not be ours (a remote DOCKER_HOST).
    const n = Math.max(1, Math.ceil((until.getTime() - this.#now()) / 1000));
    const r = await this.exec(id, [...LEASE_COMMAND], { timeoutMs: 5000, env: [`LAB_LEASE_SECONDS=${n}`] });
    if (r.code !== 0) {
      throw new AppError('internal', 'renewing the lab host lease failed', {
        cause: new Error(`lab-lease exit ${r.code}: ${r.stderr.trim().slice(0, 200)}`),
      });
    }
  }

  async removeLabHost(id: string): Promise<void> {
    try {
      await this.#docker.getContainer(id).remove({ force: true });
    } catch (err) {
      const status = (err as DockerErrorLike).statusCode;
      // 404: already gone (AutoRemove); 409: removal already in progress.
      if (status !== 404 && status !== 409) throw mapError(err, 'removing the lab host');
    }
    this.#uids.releaseHost(id);
    this.#hostUids.delete(id);
  }

  /**
   * The Engine API's events stream, for our containers' `die` and `destroy`: a host that
   * goes is known at once, not at the reaper's next listing. The stream ends when dockerd
   * restarts; it is opened again with a backoff (1 s doubling to 15 s), and each reopening
   * says `resync` (events in the gap are lost). An engine that refuses events (403: the
   * engine filter in front of it) is not asked again: the reaper's listing covers it.
   */
  watchLabHosts(on: (e: LabHostEvent) => void): () => void {
    let stopped = false;
    let stream: (NodeJS.ReadableStream & { destroy?: () => void }) | undefined;
    let timer: NodeJS.Timeout | undefined;
    let delay = 1000;
    const again = (connected: boolean) => {
      stream = undefined;
      if (stopped) return;
      if (connected) delay = 1000;
      timer = setTimeout(() => void open(true), delay);
      timer.unref();
      delay = Math.min(delay * 2, 15_000);
    };
    const open = async (reopening: boolean) => {
      let s: NodeJS.ReadableStream;
      try {
        s = (await this.#docker.getEvents({
          filters: { type: ['container'], event: ['die', 'destroy'], label: [`${LABELS.managed}=true`] },
        })) as NodeJS.ReadableStream;
      } catch (err) {
        if ((err as DockerErrorLike).statusCode === 403) return;
        return again(false);
      }
      if (stopped) return (s as { destroy?: () => void }).destroy?.();
      stream = s;
      if (reopening) {
        this.#autoRemove = null; // the engine may have come back with other settings
        on({ type: 'resync' });
      }
      let buf = '';
      s.on('data', (chunk: Buffer) => {
        buf += chunk.toString();
        // Newline-delimited JSON; a line may arrive in pieces.
        for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
          const line = buf.slice(0, i).trim();
          buf = buf.slice(i + 1);
          if (!line) continue;
          try {
            const e = JSON.parse(line) as { Actor?: { ID?: string; Attributes?: Record<string, string> } };
            const id = e.Actor?.ID;
            if (!id) continue;
            const l = fromLabels(e.Actor?.Attributes);
            on({ type: 'gone', hostId: id, sessionId: l.sessionId, instance: l.instance });
          } catch {
            // Not an event we can read: the next listing decides.
          }
        }
        if (buf.length > 1 << 20) buf = ''; // no line is this long: not an events stream
      });
      let ended = false;
      const end = () => {
        if (ended) return;
        ended = true;
        again(true);
      };
      s.once('end', end);
      s.once('close', end);
      s.once('error', end);
    };
    void open(false);
    return () => {
      stopped = true;
      if (timer) clearTimeout(timer);
      stream?.destroy?.();
    };
  }

  async listLabHosts(): Promise<LabHostSummary[]> {
    let list: Docker.ContainerInfo[];
    const started = ++this.#seq;
    try {
      list = await this.#docker.listContainers({ all: true, filters: { label: [`${LABELS.managed}=true`] } });
    } catch (err) {
      throw mapError(err, 'listing lab hosts');
    }
    // Learn uids from the labels; forget hosts this listing no longer shows (unless they
    // were made while it ran).
    const live = new Set(list.map((c) => c.Id));
    for (const [id, e] of this.#hostUids) if (e.seq < started && !live.has(id)) this.#hostUids.delete(id);
    return list.map((c) => {
      const l = fromLabels(c.Labels);
      if (l.uid !== undefined && !this.#hostUids.has(c.Id)) this.#remember(c.Id, l.uid);
      return {
        id: c.Id,
        sessionId: l.sessionId,
        lab: l.lab,
        instance: l.instance,
        deadline: l.deadline,
        pooled: l.pooled,
        createdAt: new Date(c.Created * 1000),
        running: c.State === 'running',
        exited: c.State === 'exited' || c.State === 'dead',
      };
    });
  }

  async openTerminal(
    hostId: string,
    terminal: TerminalDef,
    size: { cols: number; rows: number },
  ): Promise<TerminalProcess> {
    const container = this.#docker.getContainer(hostId);
    const uid = await this.#uidOf(hostId);
    let exec: Docker.Exec;
    let stream: import('node:stream').Duplex;
    try {
      exec = await container.exec(execSpec(terminal, uid) as Docker.ExecCreateOptions);
      stream = (await exec.start({ hijack: true, stdin: true, Tty: true })) as import('node:stream').Duplex;
    } catch (err) {
      const status = (err as DockerErrorLike).statusCode;
      if (status === 404 || status === 409) {
        throw new AppError('session_ended', 'The lab host is gone (it may have expired).', { cause: err });
      }
      throw mapError(err, 'opening a terminal');
    }
    // Keystrokes must not wait for Nagle's algorithm (tcp DOCKER_HOST).
    (stream as unknown as { setNoDelay?: (b: boolean) => void }).setNoDelay?.(true);
    const resize = async (cols: number, rows: number) => {
      await exec.resize({ w: cols, h: rows });
    };
    await resize(size.cols, size.rows).catch(() => {});
    const exited = new Promise<number | null>((resolve) => {
      let done = false;
      // The stream also ends when the engine loses it (dockerd restarting, live-restore)
      // while the process runs on: only an exec the engine says is over has exited; null
      // otherwise (the shell, under dtach, is then still there for the next exec).
      const finish = async () => {
        if (done) return;
        done = true;
        for (let i = 0; i < 5; i++) {
          try {
            const s = await exec.inspect();
            if (!s.Running) {
              // A host removed under the shell ends its exec too: that is the host going (the
              // session layer hears it from the events), not the shell exiting.
              // The engine may say "running" for a moment after it killed the exec with the
              // host: a shell killed by a signal (code >= 128) gets a second look.
              const running = () =>
                this.#docker
                  .getContainer(hostId)
                  .inspect()
                  .then(
                    (c) => Boolean(c.State?.Running) && !c.State?.Restarting,
                    () => false,
                  );
              const code = typeof s.ExitCode === 'number' ? s.ExitCode : null;
              let alive = await running();
              if (alive && code !== null && code >= 128) {
                await new Promise((r) => setTimeout(r, 300));
                alive = await running();
              }
              return resolve(alive ? code : null);
            }
          } catch {
            return resolve(null);
          }
          await new Promise((r) => setTimeout(r, 50 * 2 ** i));
        }
        resolve(null);
      };
      stream.once('end', finish);
      stream.once('close', finish);
      stream.once('error', finish);
    });
    return {
      stream,
      resize,
      exited,
      // WARNING: closing the attach stream does not kill the exec'd process (the Engine
      // API has no "kill exec"); it ends when its TTY hangs up or with the lab host.
      close: () => stream.destroy(),
    };
  }

  async exec(
    hostId: string,
    cmd: string[],
    opts: { timeoutMs?: number; env?: string[] } = {},
  ): Promise<{ code: number | null; stdout: string; stderr: string }> {
    const container = this.#docker.getContainer(hostId);
    const user = labUser(await this.#uidOf(hostId));
    try {
      const exec = await container.exec({
        Cmd: cmd,
        AttachStdout: true,
        AttachStderr: true,
        User: user,
        // The image's /etc/passwd points into the lab host's /run/lab, which the engine
        // cannot read, so it would set HOME=/.
        Env: [`HOME=${LAB_HOME}`, ...(opts.env ?? [])],
        Tty: false,
      });
      const stream = await exec.start({ hijack: true, stdin: false });
      const out = new Collector(EXEC_OUTPUT_CAP);
      const err = new Collector(EXEC_OUTPUT_CAP);
      this.#docker.modem.demuxStream(stream, out.stream, err.stream);
      await withTimeout(
        new Promise<void>((resolve) => {
          stream.once('end', resolve);
          stream.once('close', resolve);
          stream.once('error', resolve);
        }),
        opts.timeoutMs ?? this.#callTimeoutMs,
      ).catch((e) => {
        stream.destroy();
        throw e;
      });
      const i = await exec.inspect();
      return {
        code: typeof i.ExitCode === 'number' ? i.ExitCode : null,
        stdout: out.text(),
        stderr: err.text(),
      };
    } catch (err) {
      const status = (err as DockerErrorLike).statusCode;
      if (status === 404 || status === 409) {
        throw new AppError('session_ended', 'The lab host is gone (it may have expired).', { cause: err });
      }
      throw mapError(err, 'running a command in the lab host');
    }
  }
}

class Collector {
  readonly stream = new PassThrough();
  #chunks: Buffer[] = [];
  #size = 0;
  constructor(cap: number) {
    this.stream.on('data', (c: Buffer) => {
      if (this.#size >= cap) return;
      this.#chunks.push(c);
      this.#size += c.length;
    });
  }
  text(): string {
    return Buffer.concat(this.#chunks).toString('utf8');
  }
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(Object.assign(new Error(`timed out after ${ms} ms`), { code: 'ETIMEDOUT' })),
        ms,
      );
    }),
  ]).finally(() => clearTimeout(timer));
}
