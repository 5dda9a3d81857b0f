/**
 * An in-memory runtime for unit tests only (integration tests use the real engine).
 * Terminals are echo shells: what is written comes back, `exit` ends them.
 */
import { Duplex } from 'node:stream';
import type { TerminalDef } from '../../labs/schema.ts';
import { AppError } from '../../server/src/errors.ts';
import type {
  EngineInfo,
  LabHost,
  LabHostEvent,
  LabHostRequest,
  LabHostSummary,
  Runtime,
  TerminalProcess,
} from '../../server/src/runtime/runtime.ts';

export class FakeRuntime implements Runtime {
  reachable = true;
  /** Milliseconds createLabHost takes. */
  createDelayMs = 0;
  readonly hosts = new Map<string, LabHostSummary>();
  readonly terminals: FakeTerminal[] = [];
  /** Each host's lease (LabHostRequest.lease, then renewLease), for the pool's tests. */
  readonly leases = new Map<string, Date>();
  created = 0;
  #next = 1;
  readonly #watchers = new Set<(e: LabHostEvent) => void>();

  watchLabHosts(on: (e: LabHostEvent) => void): () => void {
    this.#watchers.add(on);
    return () => this.#watchers.delete(on);
  }

  /** The engine lost a host (it restarted, someone removed it): said at once, or `quietly`
   *  (while the watch was down), its shells' streams end with no exit code. */
  vanish(id: string, opts: { quietly?: boolean } = {}): void {
    const h = this.hosts.get(id);
    this.hosts.delete(id);
    for (const t of this.terminals) if (t.hostId === id) t.kill(null);
    if (h && !opts.quietly)
      for (const w of this.#watchers)
        w({ type: 'gone', hostId: id, sessionId: h.sessionId, instance: h.instance });
  }

  /** The watch came back (after the engine restarted): what it missed is not known. */
  resync(): void {
    for (const w of this.#watchers) w({ type: 'resync' });
  }

  async info(): Promise<EngineInfo> {
    return this.reachable
      ? { reachable: true, version: 'fake 1.0', cgroupVersion: '2' }
      : { reachable: false, error: 'down' };
  }

  async createLabHost(req: LabHostRequest): Promise<LabHost> {
    if (!this.reachable) throw new AppError('engine_unavailable', 'fake engine is down');
    if (this.createDelayMs) await new Promise((r) => setTimeout(r, this.createDelayMs));
    const id = `fake-${this.#next++}`;
    this.created++;
    this.leases.set(id, req.lease ?? req.deadline);
    this.hosts.set(id, {
      id,
      sessionId: req.sessionId,
      lab: req.lab.id,
      instance: req.instance,
      deadline: req.deadline,
      pooled: req.pooled,
      createdAt: new Date(),
    });
    return { id, sessionId: req.sessionId };
  }

  /** Pretend an earlier run left a host behind. */
  addLeftover(h: Omit<LabHostSummary, 'createdAt' | 'pooled'> & { pooled?: boolean }): void {
    this.hosts.set(h.id, { pooled: false, ...h, createdAt: new Date() });
  }

  async removeLabHost(id: string): Promise<void> {
    this.hosts.delete(id);
    for (const t of this.terminals) if (t.hostId === id) t.kill(137);
  }

  async renewLease(id: string, until: Date): Promise<void> {
    if (!this.hosts.has(id)) throw new AppError('session_ended', 'no such host');
    const deadline = this.hosts.get(id)?.deadline;
    this.leases.set(id, deadline && deadline < until ? deadline : until);
  }

  async listLabHosts(): Promise<LabHostSummary[]> {
    if (!this.reachable) throw new AppError('engine_unavailable', 'fake engine is down');
    return [...this.hosts.values()];
  }

  async openTerminal(
    hostId: string,
    terminal: TerminalDef,
    size: { cols: number; rows: number },
  ): Promise<TerminalProcess> {
    if (!this.hosts.has(hostId)) throw new AppError('session_ended', 'no such host');
    const t = new FakeTerminal(hostId, terminal.name, size);
    this.terminals.push(t);
    return t;
  }

  async exec(): Promise<{ code: number | null; stdout: string; stderr: string }> {
    return { code: 0, stdout: '', stderr: '' };
  }
}

export class FakeTerminal implements TerminalProcess {
  readonly hostId: string;
  readonly name: string;
  size: { cols: number; rows: number };
  readonly stream: Duplex;
  readonly exited: Promise<number | null>;
  #resolve!: (code: number | null) => void;
  #line = '';

  constructor(hostId: string, name: string, size: { cols: number; rows: number }) {
    this.hostId = hostId;
    this.name = name;
    this.size = size;
    this.exited = new Promise((r) => {
      this.#resolve = r;
    });
    const self = this;
    this.stream = new Duplex({
      read() {},
      write(chunk: Buffer, _enc, cb) {
        self.stream.push(chunk); // echo
        self.#line += chunk.toString();
        if (self.#line.includes('exit\r')) self.kill(0);
        if (self.#line.includes('\r')) self.#line = '';
        cb();
      },
    });
  }

  async resize(cols: number, rows: number): Promise<void> {
    this.size = { cols, rows };
  }

  kill(code: number | null): void {
    this.stream.push(null);
    this.#resolve(code);
  }

  close(): void {
    this.kill(129);
  }
}
