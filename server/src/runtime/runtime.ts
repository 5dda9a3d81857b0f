/**
 * The runtime interface: what the session manager needs from a container engine, in our
 * own types. Docker is the first adapter (runtime/docker/); only adapters import their
 * engine's client library.
 */
import type { Duplex } from 'node:stream';
import type { LabDef, TerminalDef } from '../../../labs/schema.ts';

export interface EngineInfo {
  reachable: boolean;
  /** Engine name and version, e.g. "docker 20.10.24". */
  version?: string;
  cgroupVersion?: '1' | '2';
  /** The engine applies AppArmor profiles to containers. */
  apparmor?: boolean;
  /** The engine runs rootless: container uids are mapped into its user's subordinate uids. */
  rootless?: boolean;
  /** The engine has userns-remap: container uids are mapped into a subordinate range. */
  usernsRemap?: boolean;
  /** The engine leaves containers running while it restarts (dockerd --live-restore). */
  liveRestore?: boolean;
  /** The engine's machine: its memory in bytes and its CPUs (docker info MemTotal, NCPU). */
  memoryBytes?: number;
  cpus?: number;
  /** Why it is unreachable, for operators. */
  error?: string;
}

export interface LabHostRequest {
  lab: LabDef;
  sessionId: string;
  /** The server instance asking (CL_INSTANCE): at start it removes what its last run left. */
  instance: string;
  /** When the server will end the session (it may be extended). */
  expiresAt: Date;
  /** The lab host ends by itself then, server or not; past it any server may remove it. */
  deadline: Date;
  /**
   * When the host ends by itself unless its lease is renewed (renewLease), up to `deadline`
   * (default: the deadline). A warm-pool host gets the pool's maximum age, so a server
   * that is killed for good does not leave its spares running until their deadline.
   */
  lease?: Date;
  /** Made ahead for the warm pool (a Start takes it later). */
  pooled: boolean;
}

export interface LabHost {
  /** Engine-side id; never shown to readers or put in URLs. */
  id: string;
  sessionId: string;
}

export interface LabHostSummary {
  id: string;
  sessionId: string;
  lab: string;
  instance: string;
  /** The hard deadline the host carries (undefined if it carries none). */
  deadline: Date | undefined;
  /** Made for the warm pool. */
  pooled: boolean;
  createdAt: Date;
  /** Running now (false: stopped, dead or still being created); undefined if unknown. */
  running?: boolean;
  /** Stopped for good (exited or dead, not being created): only removing it is left. */
  exited?: boolean;
}

/** What the runtime saw happen to lab hosts, in our terms. */
export type LabHostEvent =
  /** The host stopped or was removed (by us, by its own deadline, by the engine restarting). */
  | { type: 'gone'; hostId: string; sessionId: string; instance: string }
  /** The watch (re)connected: what happened while it was down is not known; compare with
   *  listLabHosts. */
  | { type: 'resync' };

/** A running shell with a TTY. Closing `stream` or calling `close()` ends it. */
export interface TerminalProcess {
  /** Raw bytes both ways (TTY: stdout and stderr are merged). */
  readonly stream: Duplex;
  resize(cols: number, rows: number): Promise<void>;
  /**
   * Resolves once the stream to the shell has ended: with the exit code if the shell is
   * gone, null if that is not known (the engine lost the stream: a new openTerminal may
   * find the same shell).
   */
  readonly exited: Promise<number | null>;
  close(): void;
}

export interface Runtime {
  /** Cheap reachability probe; never throws. */
  info(): Promise<EngineInfo>;
  /** Throws AppError('image_missing') when the lab's image is not built. */
  createLabHost(req: LabHostRequest): Promise<LabHost>;
  /** Force-removes the lab host and everything in it; a missing host is not an error. */
  removeLabHost(id: string): Promise<void>;
  /** Moves the host's lease (see LabHostRequest.lease); it never goes past the deadline. */
  renewLease(id: string, until: Date): Promise<void>;
  /** Lab hosts this runtime manages (by label), whichever server instance made them. */
  listLabHosts(): Promise<LabHostSummary[]>;
  /**
   * Calls `on` as lab hosts go, from now on, until the returned function is called. Never
   * throws: a watch that breaks (the engine restarting) reconnects by itself and then says
   * `resync`.
   */
  watchLabHosts(on: (e: LabHostEvent) => void): () => void;
  openTerminal(
    hostId: string,
    terminal: TerminalDef,
    size: { cols: number; rows: number },
  ): Promise<TerminalProcess>;
  /** Run a command (no TTY) in the lab host as the reader; for checks and panels. Without
   *  `timeoutMs`, the runtime's own limit for quick calls applies (CL_ENGINE_TIMEOUT). */
  exec(
    hostId: string,
    cmd: string[],
    opts?: { timeoutMs?: number },
  ): Promise<{ code: number | null; stdout: string; stderr: string }>;
}
