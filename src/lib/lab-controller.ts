/**
 * The heavy half of a lab block, imported by `lab-boot.ts` on the first click that needs
 * it. A LabController carries out what its session state machine (lab-machine.ts)
 * decides, and owns what that creates: the panes (terminal-pane.ts: xterm + client), the
 * kernel view, the recording (lab-recording.ts) for the block's lifetime; the terminal
 * clients, countdown and other timers of a session for that session's run only (disposed
 * on Stop, Reset, expiry, refusal and page leave). A LabPage owns the page's controllers
 * and the page-wide listeners.
 */

import { type Disposable, DisposableStore, toDisposable } from './disposable.ts';
import {
  createSession,
  deleteSession,
  extendSession,
  getCgroup,
  getProcesses,
  LabApiError,
  type LabSession,
  probeSession,
  runCheck,
  type SessionTerminal,
  terminalSocketUrl,
  terminalTicket,
} from './lab-api.ts';
import { type LabAvailability, setMessage } from './lab-health.ts';
import {
  ATTACH_TIMEOUT_MS,
  type LabEffect,
  type LabEvent,
  LabMachine,
  type LabState,
  LOW_TIME_MS,
} from './lab-machine.ts';
import { LabRecording } from './lab-recording.ts';
import { type InspectSource, KernelView } from './panels/kernel-view.ts';
import { type CheckRunner, runStepCheck, showCheck } from './panels/step-checks.ts';
import { TerminalClient, TerminalUrlRefused } from './terminal-client.ts';
import { TerminalPane } from './terminal-pane.ts';

export type { LabState } from './lab-machine.ts';

type LabVm = import('./vm/lab-vm.ts').LabVm;
type VmAssets = import('./vm/lab-vm.ts').VmAssets;
type CheckDef = import('../../labs/schema.ts').CheckDef;

/** Where a run's sandbox is: a lab host of the lab server, or a VM in this tab. */
export type LabMode = 'server' | 'vm';

/**
 * A session as the controller holds it: the lab server's answer, or, for the in-browser
 * mode, the same shape around the tab's VM (no token, no URLs: nothing leaves the page).
 */
export type Session = LabSession & { vm?: LabVm };

/** The in-browser VM lasts as long as the page: its "deadline" is a day away, and not shown. */
const VM_LIFETIME_MS = 24 * 3600_000;

/** The in-browser lab's files and checks (Lab.astro's data-vm), if it has that mode. */
function vmConfig(root: HTMLElement): { assets: VmAssets; checks: CheckDef[] } | undefined {
  const raw = root.dataset.vm;
  if (!raw) return undefined;
  try {
    return JSON.parse(raw) as { assets: VmAssets; checks: CheckDef[] };
  } catch {
    return undefined;
  }
}

function formatLeft(ms: number): string {
  const s = Math.max(0, Math.ceil(ms / 1000));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${sec}` : `${m}:${sec}`;
}

function mb(bytes: number): string {
  return `${(bytes / 1e6).toFixed(bytes < 1e7 ? 1 : 0)} MB`;
}

/** The kernel view's source of one session: the server's API, or the VM's control channel. */
function inspectSource(session: Session): InspectSource {
  const vm = session.vm;
  if (vm)
    return {
      processes: () => vm.processes(),
      cgroup: () => vm.cgroup(),
      // Each reading runs scripts inside the emulated machine: less often than on a server.
      intervalMs: 3000,
    };
  return {
    processes: (signal) => getProcesses(session, signal),
    cgroup: (signal) => getCgroup(session, signal),
  };
}

function listTitles(panes: TerminalPane[]): string {
  const t = panes.map((p) => `“${p.title}”`);
  return t.length <= 1 ? (t[0] ?? '') : `${t.slice(0, -1).join(', ')} and ${t.at(-1)}`;
}

/**
 * A terminal's socket URLs: the ticket that came with the session first, then a fresh one
 * for each reconnect. A session the server no longer has, or a token it no longer takes,
 * ends the terminal instead of retrying.
 */
function socketUrls(session: LabSession, t: SessionTerminal): () => Promise<string> {
  let first = t.ticket;
  return async () => {
    let ticket = first;
    first = undefined;
    if (!ticket) {
      try {
        ticket = await terminalTicket(session, t);
      } catch (err) {
        const status = err instanceof LabApiError ? err.status : 0;
        if (status === 404) throw new TerminalUrlRefused('not-found', 'session unknown');
        // The server's words say why (e.g. the lab machine restarted under it).
        if (status === 410) throw new TerminalUrlRefused('session-ended', (err as Error).message);
        if (status === 401) throw new TerminalUrlRefused('bad-token', (err as Error).message);
        throw err;
      }
    }
    return terminalSocketUrl(t, ticket);
  };
}

export class LabController implements Disposable {
  readonly root: HTMLElement;
  readonly labId: string;
  readonly panes: readonly TerminalPane[];
  readonly kernelView: KernelView | undefined;
  readonly #machine: LabMachine<Session>;
  readonly #recording: LabRecording;
  /** What lives as long as the block: panes, kernel view, recording, the elapsed counter. */
  readonly #store = new DisposableStore();
  /** What lives as long as one run of the machine: clients, countdown, attach timeout. */
  #run = new DisposableStore();
  #elapsed: Disposable | undefined;
  /** The current run's attach timeout, dropped once ready. */
  #attachTimeout: Disposable | undefined;
  /** start() callers waiting for the start to end (true once ready). */
  #waiters: ((ok: boolean) => void)[] = [];
  readonly #beforeStart: (c: LabController) => Promise<void>;
  /** The in-browser mode's files and checks; undefined where this lab has no such mode here. */
  readonly #vm: { assets: VmAssets; checks: CheckDef[] } | undefined;
  /** Whether the lab server can run this lab at all (lab.yaml `modes`). */
  readonly #serverModes: boolean;
  /** The mode of the current (or last) run. */
  #mode: LabMode = 'server';
  #availability: LabAvailability | undefined;

  /** `beforeStart`: LabPage ends another block's session of the same lab first. */
  constructor(
    root: HTMLElement,
    opts: { availability?: LabAvailability; beforeStart?(c: LabController): Promise<void> } = {},
  ) {
    this.root = root;
    this.#beforeStart = opts.beforeStart ?? (async () => {});
    const availability = opts.availability;
    this.#availability = availability;
    this.labId = root.dataset.lab ?? '';
    const s = root.dataset.state;
    this.#machine = new LabMachine<Session>({
      now: Date.now,
      state: s === 'offline' || s === 'engine-down' ? s : 'idle',
    });
    this.#vm = vmConfig(root);
    this.#serverModes = (root.dataset.modes ?? 'server browser').split(' ').includes('server');
    if (availability) this.#machine.dispatch({ type: 'availability', availability });
    this.panes = Array.from(root.querySelectorAll<HTMLElement>('[data-terminal]'), (el) =>
      this.#store.add(new TerminalPane(el)),
    );
    this.kernelView = KernelView.in(root);
    if (this.kernelView) this.#store.add(this.kernelView);
    this.#recording = this.#store.add(new LabRecording(root, this.panes, (m) => this.#announce(m)));
    this.#store.add(toDisposable(() => this.#run.dispose()));
  }

  get state(): LabState {
    return this.#machine.state;
  }

  /** Whether a session is live or being made (LabPage lets one block per lab hold one). */
  get busy(): boolean {
    return this.state === 'starting' || this.#machine.session !== undefined;
  }

  /**
   * Starts a sandbox (joins a start in progress). Resolves true once ready. `mode`: where;
   * by default the lab server when it can run labs, else the in-browser VM if there is one.
   */
  async start(opts: { focus?: boolean; mode?: LabMode } = {}): Promise<boolean> {
    if (this.state === 'ready') return true;
    if (this.state !== 'starting') {
      this.#mode = opts.mode ?? this.preferredMode;
      this.root.dataset.mode = this.#mode;
      await this.#beforeStart(this);
    }
    const done = new Promise<boolean>((resolve) => this.#waiters.push(resolve));
    void this.#send({ type: 'start', focus: opts.focus ?? false });
    return done;
  }

  /** The mode a Start without a choice uses. */
  get preferredMode(): LabMode {
    if (!this.#vm) return 'server';
    if (!this.#serverModes) return 'vm';
    return this.#availability && this.#availability.kind !== 'live' ? 'vm' : 'server';
  }

  /** Ends the sandbox; the terminals keep their last screen, read-only. */
  stop(): Promise<void> {
    return this.#send({ type: 'stop' });
  }

  /** Throws the sandbox away and starts a fresh one. */
  reset(): Promise<boolean> {
    const done = new Promise<boolean>((resolve) => this.#waiters.push(resolve));
    void this.#send({ type: 'reset' });
    return done;
  }

  extend(): Promise<void> {
    return this.#send({ type: 'extend' });
  }

  /** Types `command` + Enter into one terminal (or `both`), starting the lab if needed. */
  async run(target: string, command: string): Promise<boolean> {
    const panes = target === 'both' ? [...this.panes] : this.panes.filter((p) => p.name === target);
    if (panes.length === 0) return false;
    if (this.state !== 'ready' && !(await this.start())) return false;
    this.#reveal();
    const keys = `${command.replace(/\r?\n/g, '\r')}\r`;
    const run = this.#run;
    for (const pane of panes) {
      // Wait (briefly) for the prompt, so the command is not echoed before it.
      await pane.prompted(3000, run);
      if (run.disposed) return false;
      pane.send(keys);
    }
    const first = command.split('\n')[0] ?? '';
    const where = panes.length > 1 ? 'both terminals' : listTitles(panes);
    this.#announce(`Ran ${first.length > 40 ? `${first.slice(0, 40)}…` : first} in ${where}.`);
    return true;
  }

  /** Runs a step check (`<Check>` element) in this lab's session, starting the lab if needed. */
  async check(el: HTMLElement): Promise<void> {
    if (this.state !== 'ready') {
      showCheck(el, {
        kind: 'pending',
        text: 'Starting the lab first: the check looks inside your sandbox…',
      });
      if (!(await this.start())) {
        showCheck(el, {
          kind: 'error',
          text: 'This check needs a running lab, and it did not start: see the lab block for why.',
        });
        return;
      }
    }
    const session = this.#machine.session;
    if (session) await runStepCheck(this.#checkRunner(session), el);
  }

  #checkRunner(session: Session): CheckRunner {
    const vm = session.vm;
    if (!vm) return (id, answer) => runCheck(session, id, answer);
    return async (id, answer) => {
      const def = this.#vm?.checks.find((c) => c.id === id);
      if (!def) throw new Error(`This lab has no check “${id}”.`);
      return vm.check(def, answer);
    };
  }

  /** Play / pause / replay the recorded session. */
  toggleRecording(): Promise<void> {
    return this.#recording.toggle();
  }

  setAvailability(availability: LabAvailability): void {
    this.#availability = availability;
    // A lab the lab server cannot run is not "offline" when there is no server.
    if (!this.#serverModes && this.#vm) return;
    void this.#send({ type: 'availability', availability });
  }

  setScreenReaderMode(on: boolean): void {
    for (const p of this.panes) p.setScreenReaderMode(on);
  }

  /** pagehide: end the session even though the page is going away. */
  leavePage(): void {
    void this.#send({ type: 'page-left' });
  }

  /** pageshow from the back/forward cache: the session was ended on leave. */
  cameBack(): void {
    void this.#send({ type: 'page-back' });
  }

  online(): void {
    void this.#send({ type: 'online' });
  }

  dispose(): void {
    this.leavePage();
    this.#store.dispose();
    for (const w of this.#waiters.splice(0)) w(false);
  }

  /** Feeds one event to the machine and carries out its effects; resolves when their requests have. */
  #send(ev: LabEvent<Session>): Promise<void> {
    if (this.#store.disposed) return Promise.resolve();
    const effects = this.#machine.dispatch(ev);
    const pending = effects.map((e) => this.#perform(e));
    this.#render();
    return Promise.all(pending).then(() => {});
  }

  #perform(e: LabEffect<Session>): Promise<void> | undefined {
    switch (e.type) {
      case 'announce':
        this.#announce(e.message);
        return;
      case 'create':
        if (this.#mode === 'vm') return this.#createVm(e.run);
        return createSession(this.labId).then(
          (session) =>
            this.#send({
              type: 'created',
              run: e.run,
              session,
              expiresAt: session.expiresAt,
              terminals: this.panes
                .filter((p) => session.terminals.some((t) => t.name === p.name))
                .map((p) => p.name),
            }),
          (err: unknown) => {
            const api = err instanceof LabApiError ? err : undefined;
            return this.#send({
              type: 'create-failed',
              run: e.run,
              error: {
                code: api?.code ?? 'network',
                message: api?.message ?? 'The lab could not start.',
                retryAfter: api?.retryAfter,
              },
            });
          },
        );
      case 'delete': {
        const run = e.report;
        const vm = e.session.vm;
        vm?.dispose();
        const done = vm ? Promise.resolve() : deleteSession(e.session, e.keepalive).catch(() => {});
        return run === undefined ? done : done.then(() => this.#send({ type: 'deleted', run }));
      }
      case 'connect':
        this.#connect(e.run, e.session);
        return;
      case 'ready':
        this.#ready(e.session, e.focus);
        return;
      case 'end-run':
        this.#run.dispose();
        this.#run = new DisposableStore();
        return;
      case 'extend': {
        const run = e.run;
        if (e.session.vm) return this.#send({ type: 'extended', run, expiresAt: e.session.expiresAt });
        return extendSession(e.session).then(
          (expiresAt) => this.#send({ type: 'extended', run, expiresAt }),
          (err: unknown) => this.#send({ type: 'extend-failed', run, message: (err as Error).message }),
        );
      }
      case 'probe': {
        const run = e.run;
        if (e.session.vm)
          return this.#send({ type: 'probed', run, result: e.session.vm.disposed ? 'gone' : 'alive' });
        return probeSession(e.session).then((result) => this.#send({ type: 'probed', run, result }));
      }
      case 'retry-now':
        for (const p of this.panes) p.retryNow();
        return;
      case 'clear-screens':
        for (const p of this.panes) p.clear();
        return;
      case 'stop-player':
        this.#recording.stop();
        return;
      case 'engine-detail': {
        const detail = this.root.querySelector<HTMLElement>('[data-engine-detail]');
        if (detail) setMessage(detail, e.message);
        return;
      }
    }
  }

  /**
   * The in-browser mode's "create": download (or take from the cache) and restore the lab's
   * VM, with the progress bar; the VM is the session.
   */
  async #createVm(run: number): Promise<void> {
    const cfg = this.#vm;
    const fail = (code: string, message: string) =>
      this.#send({ type: 'create-failed', run, error: { code, message } });
    if (!cfg) return fail('vm_missing', 'This lab cannot run in your browser on this copy of the site.');
    const progress = this.#progress();
    try {
      const { LabVm, deviceRefusal } = await import('./vm/lab-vm-entry.ts');
      const refusal = deviceRefusal();
      if (refusal) return fail('vm_refused', refusal);
      const total =
        cfg.assets.state.bytes + cfg.assets.bios.bytes + cfg.assets.vgaBios.bytes + cfg.assets.wasmBytes;
      this.#announce(
        `Starting the lab in your browser: downloading ${mb(total)} (kept for the next lesson)…`,
      );
      let told = false;
      const vm = await LabVm.start(cfg.assets, {
        onProgress: (phase, fraction) => {
          progress.set(phase, fraction, total);
          if (phase === 'restore' && !told) {
            told = true;
            this.#announce('Starting the lab in your browser: restoring its saved Linux…');
          }
        },
      });
      if (this.#machine.run !== run) {
        vm.dispose();
        return;
      }
      const now = Date.now();
      const session: Session = {
        id: `vm-${this.labId}`,
        token: '',
        lab: this.labId,
        createdAt: new Date(now).toISOString(),
        expiresAt: new Date(now + VM_LIFETIME_MS).toISOString(),
        terminals: this.panes.map((p) => ({ name: p.name, title: p.title, url: '' })),
        vm,
      };
      return this.#send({
        type: 'created',
        run,
        session,
        expiresAt: session.expiresAt,
        terminals: this.panes.map((p) => p.name),
      });
    } catch (err) {
      return fail(
        'vm_failed',
        `The lab could not start in your browser: ${(err as Error).message || String(err)}`,
      );
    } finally {
      progress.done();
    }
  }

  /** The download-and-restore bar of the in-browser mode (Lab.astro's [data-vm-progress]). */
  #progress(): { set(phase: 'download' | 'restore', fraction: number, total: number): void; done(): void } {
    const box = this.root.querySelector<HTMLElement>('[data-vm-progress]');
    const bar = box?.querySelector('progress');
    const label = box?.querySelector<HTMLElement>('[data-vm-progress-text]');
    if (box) box.hidden = false;
    return {
      set: (phase, fraction, total) => {
        // Download is nine tenths of the bar, the restore the last tenth.
        const value = phase === 'download' ? fraction * 0.9 : 0.9 + fraction * 0.1;
        const text =
          phase === 'download'
            ? `Downloading: ${mb(fraction * total)} of ${mb(total)}`
            : 'Restoring the saved Linux…';
        if (bar) {
          bar.value = value;
          bar.setAttribute('aria-valuetext', text);
        }
        if (label) label.textContent = text;
      },
      done: () => {
        if (box) box.hidden = true;
      },
    };
  }

  /** Opens each pane's terminal of the session; the run owns the clients and the timeout. */
  #connect(run: number, session: Session): void {
    const owner = this.#run;
    for (const [index, pane] of this.panes.entries()) {
      const t = session.terminals.find((x) => x.name === pane.name);
      if (!t) continue;
      const send = (ev: LabEvent<Session>) => {
        if (!owner.disposed) void this.#send(ev);
      };
      const vm = session.vm;
      owner.add(
        pane.connect(
          vm
            ? (o) => vm.terminal(index, o)
            : (o) => new TerminalClient({ ...o, url: socketUrls(session, t) }),
          {
            onStatus: (status, attempt, info) => {
              if (status === 'attached') send({ type: 'attached', run, terminal: pane.name });
              if (status === 'reconnecting')
                send({
                  type: 'reconnecting',
                  run,
                  terminal: pane.name,
                  attempt,
                  restarting: info.restarting,
                });
            },
            onMessage: (msg) => {
              if (msg.type === 'attached' || msg.type === 'expiring')
                send({ type: 'expiry', run, expiresAt: msg.expiresAt, warn: msg.type === 'expiring' });
              else if (msg.type === 'notice') send({ type: 'notice', run, message: msg.message });
              else if (msg.type === 'error')
                console.warn(`lab ${this.labId}/${pane.name}: ${msg.code}: ${msg.message}`);
            },
            onEnd: (reason, message) => send({ type: 'ended', run, terminal: pane.name, reason, message }),
          },
        ),
      );
    }
    this.#attachTimeout = owner.timeout(
      () => void this.#send({ type: 'attach-timeout', run }),
      ATTACH_TIMEOUT_MS,
    );
  }

  #ready(session: Session, focus: boolean): void {
    const owner = this.#run;
    owner.drop(this.#attachTimeout);
    owner.interval(() => void this.#send({ type: 'tick' }), 1000);
    void this.#send({ type: 'tick' });
    if (session.vm)
      this.#announce(
        'Ready: a real Linux kernel runs this lab in your browser; nothing you type leaves this tab. Type in either terminal.',
      );
    if (this.kernelView) {
      const kv = this.kernelView;
      kv.attach(inspectSource(session));
      owner.add(toDisposable(() => kv.detach()));
    }
    const active = document.activeElement;
    if (focus && (!active || active === document.body || this.root.contains(active)))
      this.panes.find((p) => p.focusable)?.focus();
  }

  // ---- presentation ----------------------------------------------------------------

  #render(): void {
    const state = this.#machine.state;
    const d = this.#machine.display;
    this.root.dataset.state = state;
    const label = this.root.querySelector<HTMLElement>('[data-action="start"] [data-label]');
    if (label && d.startAgain) label.textContent = 'Start again';
    const extend = this.root.querySelector<HTMLButtonElement>('[data-action="extend"]');
    if (extend) extend.disabled = d.extending;
    if (d.expiresAt) this.#renderCountdown(d.expiresAt - Date.now());
    this.#renderElapsed(state === 'starting');
    if (state !== 'starting') for (const w of this.#waiters.splice(0)) w(state === 'ready');
  }

  #renderCountdown(left: number): void {
    const el = this.root.querySelector<HTMLElement>('[data-countdown]');
    if (el) {
      el.textContent = formatLeft(left);
      el.setAttribute('datetime', `PT${Math.max(0, Math.ceil(left / 1000))}S`);
    }
    this.root.toggleAttribute('data-time-low', left < LOW_TIME_MS);
  }

  /** Seconds since the start began, while starting. */
  #renderElapsed(on: boolean): void {
    if (on === (this.#elapsed !== undefined)) return;
    const el = this.root.querySelector<HTMLElement>('[data-elapsed]');
    if (el) el.textContent = '';
    if (!on) {
      this.#store.drop(this.#elapsed);
      this.#elapsed = undefined;
      return;
    }
    const t0 = performance.now();
    this.#elapsed = this.#store.interval(() => {
      const s = Math.floor((performance.now() - t0) / 1000);
      if (el) el.textContent = s >= 1 ? `${s} s` : '';
    }, 250);
  }

  /** The status line is the lab's aria-live region: say each thing once, briefly. */
  #announce(message: string): void {
    const el = this.root.querySelector<HTMLElement>('[data-status]');
    if (el) setMessage(el, message);
  }

  /** Brings the terminals into view if a Run button far away used them. */
  #reveal(): void {
    const terms = this.root.querySelector('.lab__terms');
    if (!terms) return;
    const r = terms.getBoundingClientRect();
    if (r.bottom < 0 || r.top > innerHeight) {
      const smooth = !matchMedia('(prefers-reduced-motion: reduce)').matches;
      this.root.scrollIntoView({ block: 'nearest', behavior: smooth ? 'smooth' : 'auto' });
    }
  }
}

// ---- the page's labs -------------------------------------------------------------------

declare global {
  interface Window {
    /**
     * For browser tests and devtools: what a terminal shows, and a simulated network drop.
     * Nothing here reveals a session or its token.
     */
    __containerLabs?: {
      text(lab: string, terminal: string): string;
      drop(lab: string, terminal: string): void;
    };
  }
}

/**
 * Every lab controller of one page, and the page's own events: leaving the page ends its
 * sessions, coming back from the back/forward cache says so, going online retries at once.
 * lab-boot.ts makes one per page.
 */
export class LabPage implements Disposable {
  readonly #controllers = new Map<HTMLElement, LabController>();
  readonly #store = new DisposableStore();

  constructor(win: Window) {
    // fetch keepalive outlives the page; sendBeacon cannot send DELETE or an Authorization header.
    this.#store.listen(win, 'pagehide', () => this.#each((c) => c.leavePage()));
    this.#store.listen(win, 'pageshow', (ev) => {
      if ((ev as PageTransitionEvent).persisted) this.#each((c) => c.cameBack());
    });
    this.#store.listen(win, 'online', () => this.#each((c) => c.online()));
    const find = (lab: string, terminal: string) =>
      [...this.#controllers.values()].find((c) => c.labId === lab)?.panes.find((p) => p.name === terminal);
    win.__containerLabs = {
      text: (lab, terminal) => find(lab, terminal)?.text() ?? '',
      drop: (lab, terminal) => find(lab, terminal)?.drop(),
    };
    this.#store.add(toDisposable(() => delete win.__containerLabs));
  }

  /** The block's controller, made on first use; one session per lab per tab at a time. */
  controllerFor(root: HTMLElement, availability?: LabAvailability): LabController {
    let c = this.#controllers.get(root);
    if (!c) {
      c = this.#store.add(new LabController(root, { availability, beforeStart: (me) => this.#release(me) }));
      this.#controllers.set(root, c);
    }
    return c;
  }

  /** A second block of the same lab takes the session over from the first. */
  async #release(me: LabController): Promise<void> {
    for (const other of this.#controllers.values())
      if (other !== me && other.labId === me.labId && other.busy) await other.stop();
  }

  setAvailability(a: LabAvailability): void {
    this.#each((c) => c.setAvailability(a));
  }

  setScreenReaderMode(on: boolean): void {
    this.#each((c) => c.setScreenReaderMode(on));
  }

  dispose(): void {
    this.#store.dispose();
    this.#controllers.clear();
  }

  #each(fn: (c: LabController) => void): void {
    for (const c of this.#controllers.values()) fn(c);
  }
}
