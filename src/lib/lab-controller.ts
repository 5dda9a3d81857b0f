/**
 * The heavy half of a lab block, imported by `lab-boot.ts` on the first click that needs
 * it. One LabController per `<Lab>` element owns everything that lab creates: the
 * session (ended on Stop, Reset, expiry and page leave), one xterm.js terminal and one
 * TerminalClient per terminal, the countdown, and the recording player.
 *
 * What the reader sees follows `data-state` on the lab element (styles in lab.css):
 *   idle → starting → ready → stopped | expired | error
 *   offline (no server) / engine-down (server without engine): note + recording.
 */
import { CastPlayer, type CastTrack, type PlayerState, parseCast } from './cast-player.ts';
import {
  createSession,
  deleteSession,
  extendSession,
  type LabApiError,
  type LabSession,
  probeSession,
  type SessionTerminal,
  terminalSocketUrl,
  terminalTicket,
} from './lab-api.ts';
import { type LabAvailability, setMessage } from './lab-health.ts';
import { KernelView } from './panels/kernel-view.ts';
import { runStepCheck, showCheck } from './panels/step-checks.ts';
import { type EndReason, TerminalClient, TerminalUrlRefused } from './terminal-client.ts';
import { openTerminal, terminalText, type XTerm } from './xterm-setup.ts';

export type LabState =
  | 'idle'
  | 'starting'
  | 'ready'
  | 'stopped'
  | 'expired'
  | 'error'
  | 'offline'
  | 'engine-down';

/** How long all terminals may take to attach before the start counts as failed. */
const ATTACH_TIMEOUT_MS = 20_000;
/** Below this much time left the countdown turns amber and the reader is told once. */
const LOW_TIME_MS = 2 * 60_000;
const SR_KEY = 'container-labs:screen-reader';

interface Pane {
  name: string;
  title: string;
  el: HTMLElement;
  screen: HTMLElement;
  badge: HTMLElement;
  recording: string | undefined;
  xterm: XTerm | undefined;
  /** 'live' terminals take input; 'replay' ones belong to the recording player. */
  kind: 'live' | 'replay' | undefined;
  client: TerminalClient | undefined;
  /** After the shell exited: the next Enter opens a new shell. */
  waitingForEnter: boolean;
  /** Resolves on the first output after (re)connecting: the shell is there. */
  firstOutput: Promise<void>;
  gotOutput: () => void;
}

function screenReaderPreferred(): boolean {
  try {
    return localStorage.getItem(SR_KEY) === '1';
  } catch {
    return false;
  }
}

function formatLeft(ms: number): string {
  const s = Math.max(0, Math.ceil(ms / 1000));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${sec}` : `${m}:${sec}`;
}

function minutesText(ms: number): string {
  const m = Math.round(ms / 60_000);
  return m <= 1 ? 'about a minute' : `${m} minutes`;
}

function listTitles(panes: Pane[]): string {
  const t = panes.map((p) => `“${p.title}”`);
  return t.length <= 1 ? (t[0] ?? '') : `${t.slice(0, -1).join(', ')} and ${t.at(-1)}`;
}

function withTimeout<T>(p: Promise<T>, ms: number, fallback: T): Promise<T> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(fallback), ms);
    p.then((v) => {
      clearTimeout(timer);
      resolve(v);
    });
  });
}

export class LabController {
  readonly root: HTMLElement;
  readonly labId: string;
  readonly panes: Pane[];
  #state: LabState;
  #session: LabSession | undefined;
  /** Bumped by every start/stop; async work started under an older generation gives up. */
  #gen = 0;
  #ready: Promise<boolean> | undefined;
  #expiresAt = 0;
  #lowTimeTold = false;
  #countdown: ReturnType<typeof setInterval> | undefined;
  #elapsed: ReturnType<typeof setInterval> | undefined;
  #reconnectTold = false;
  #probing = false;
  #player: CastPlayer | undefined;
  #leftPage = false;
  /** The "Kernel view" panels; they poll only while open, visible and attached to a session. */
  readonly kernelView: KernelView | undefined;

  constructor(root: HTMLElement) {
    this.root = root;
    this.kernelView = KernelView.in(root);
    this.labId = root.dataset.lab ?? '';
    const s = root.dataset.state;
    this.#state = s === 'offline' || s === 'engine-down' ? s : 'idle';
    this.panes = Array.from(root.querySelectorAll<HTMLElement>('[data-terminal]')).map((el) => {
      const pane: Pane = {
        name: el.dataset.terminal ?? '',
        title: el.dataset.title ?? el.dataset.terminal ?? '',
        el,
        screen: el.querySelector<HTMLElement>('[data-screen]') ?? el,
        badge: el.querySelector<HTMLElement>('[data-badge]') ?? el,
        recording: el.dataset.recording,
        xterm: undefined,
        kind: undefined,
        client: undefined,
        waitingForEnter: false,
        firstOutput: Promise.resolve(),
        gotOutput: () => {},
      };
      return pane;
    });
  }

  get state(): LabState {
    return this.#state;
  }

  get session(): LabSession | undefined {
    return this.#session;
  }

  // ---- lifecycle -------------------------------------------------------------------

  /** Starts a sandbox (no-op if one is running or starting). Resolves true once ready. */
  start(opts: { focus?: boolean } = {}): Promise<boolean> {
    if (this.#state === 'ready') return Promise.resolve(true);
    if (this.#state === 'starting' && this.#ready) return this.#ready;
    this.#ready = this.#start(opts.focus ?? false);
    return this.#ready;
  }

  async #start(focus: boolean): Promise<boolean> {
    // One session per lab per tab: a second block of the same lab takes it over.
    for (const other of controllers.values()) {
      if (other !== this && other.labId === this.labId && other.#session) await other.stop();
    }
    const gen = ++this.#gen;
    this.#stopPlayer();
    this.#leftPage = false;
    this.#setState('starting', 'Starting the lab: creating your sandbox…');
    this.#startElapsed();

    let session: LabSession;
    try {
      session = await createSession(this.labId);
    } catch (err) {
      if (gen !== this.#gen) return false;
      this.#stopElapsed();
      this.#startFailed(err as LabApiError);
      return false;
    }
    if (gen !== this.#gen) {
      // Cancelled while the server was creating it.
      void deleteSession(session).catch(() => {});
      return false;
    }
    this.#session = session;
    this.#setExpiry(session.expiresAt);
    this.#announce('Starting the lab: connecting the terminals…');

    // Terminals are matched by name: the page knows them from lab.yaml at build time.
    const live = this.panes.flatMap((pane) => {
      const t = session.terminals.find((x) => x.name === pane.name);
      return t ? [{ pane, url: this.#socketUrls(session, t) }] : [];
    });
    const attached = Promise.all(live.map(({ pane, url }) => this.#connect(pane, url, gen))).then((r) =>
      r.every(Boolean),
    );
    const ok = await withTimeout(attached, ATTACH_TIMEOUT_MS, false);
    if (gen !== this.#gen) return false;
    this.#stopElapsed();
    if (!ok) {
      this.#teardown();
      void deleteSession(session).catch(() => {});
      this.#setState('error', 'The terminals did not connect. Press Retry, or reload the page.');
      return false;
    }
    this.#setState(
      'ready',
      `Ready: ${live.length > 1 ? 'type in either terminal' : 'type in the terminal'}. ${minutesText(this.#expiresAt - Date.now())} left.`,
    );
    this.#startCountdown();
    this.kernelView?.attach(session);
    const active = document.activeElement;
    if (focus && (!active || active === document.body || this.root.contains(active)))
      live[0]?.pane.xterm?.term.focus();
    return true;
  }

  /** Ends the sandbox; the terminals keep their last screen, read-only. */
  async stop(): Promise<void> {
    const session = this.#session;
    const wasStarting = this.#state === 'starting';
    this.#gen++;
    this.#teardown();
    this.#stopElapsed();
    this.#setStartLabel('Start again');
    this.#setState(
      'stopped',
      wasStarting && !session
        ? 'Start cancelled.'
        : 'Lab stopped: its sandbox is gone. Start again for a fresh one.',
    );
    if (session) await deleteSession(session).catch(() => {});
  }

  /** Throws the sandbox away and starts a fresh one. */
  async reset(): Promise<boolean> {
    const session = this.#session;
    this.#gen++;
    this.#teardown();
    this.#setState('starting', 'Resetting: removing the old sandbox…');
    if (session) await deleteSession(session).catch(() => {});
    for (const p of this.panes) p.xterm?.term.reset();
    this.#ready = this.#start(true);
    return this.#ready;
  }

  async extend(): Promise<void> {
    const session = this.#session;
    if (!session) return;
    const button = this.root.querySelector<HTMLButtonElement>('[data-action="extend"]');
    if (button) button.disabled = true;
    try {
      this.#setExpiry(await extendSession(session));
      this.#lowTimeTold = false;
      this.#announce(`Extended: ${minutesText(this.#expiresAt - Date.now())} left.`);
    } catch (err) {
      this.#announce((err as LabApiError).message);
    } finally {
      if (button) button.disabled = false;
    }
  }

  /** Types `command` + Enter into one terminal (or `both`), starting the lab if needed. */
  async run(target: string, command: string): Promise<boolean> {
    const panes = target === 'both' ? this.panes : this.panes.filter((p) => p.name === target);
    if (panes.length === 0) return false;
    if (this.#state !== 'ready' && !(await this.start())) return false;
    this.#reveal();
    const keys = `${command.replace(/\r?\n/g, '\r')}\r`;
    for (const pane of panes) {
      // Wait (briefly) for the prompt, so the command is not echoed before it.
      await withTimeout(pane.firstOutput, 3000, undefined);
      pane.client?.send(keys);
    }
    const first = command.split('\n')[0] ?? '';
    const where = panes.length > 1 ? 'both terminals' : listTitles(panes);
    this.#announce(`Ran ${first.length > 40 ? `${first.slice(0, 40)}…` : first} in ${where}.`);
    return true;
  }

  /** Runs a step check (`<Check>` element) in this lab's session, starting the lab if needed. */
  async check(el: HTMLElement): Promise<void> {
    if (this.#state !== 'ready' || !this.#session) {
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
    const session = this.#session;
    if (session) await runStepCheck(session, el);
  }

  /** Play / pause / replay the recorded session. */
  async toggleRecording(): Promise<void> {
    if (this.#player) {
      this.#player.toggle();
      return;
    }
    const panes = this.panes.flatMap((pane) => (pane.recording ? [{ pane, recording: pane.recording }] : []));
    if (panes.length === 0) return;
    this.#announce('Loading the recording…');
    let tracks: CastTrack[];
    try {
      tracks = await Promise.all(
        panes.map(async ({ pane, recording }) => {
          const res = await fetch(recording);
          if (!res.ok) throw new Error(`${res.status}`);
          const cast = parseCast(await res.text());
          const x = this.#terminal(pane, 'replay');
          return { cast, write: (d: string) => x.term.write(d), reset: () => x.term.reset() };
        }),
      );
    } catch {
      this.#announce('Could not load the recording.');
      return;
    }
    this.#player = new CastPlayer(tracks, { onState: (s) => this.#playerState(s) });
    this.#player.play();
  }

  setAvailability(a: LabAvailability): void {
    if (
      a.kind === 'live' ||
      (this.#state !== 'idle' && this.#state !== 'offline' && this.#state !== 'engine-down')
    )
      return;
    this.#state = a.kind === 'no-server' ? 'offline' : 'engine-down';
  }

  setScreenReaderMode(on: boolean): void {
    for (const p of this.panes) if (p.xterm) p.xterm.term.options.screenReaderMode = on;
  }

  /** pagehide: end the session even though the page is going away. */
  leavePage(): void {
    const session = this.#session;
    if (!session) return;
    this.#gen++;
    this.#teardown();
    this.#leftPage = true;
    void deleteSession(session, true).catch(() => {});
  }

  /** pageshow from the back/forward cache: the session was ended on leave. */
  cameBack(): void {
    if (!this.#leftPage) return;
    this.#leftPage = false;
    this.#setStartLabel('Start again');
    this.#setState('stopped', 'The lab ended when you left the page. Start again for a fresh sandbox.');
  }

  /** Test hook: the text of one terminal. */
  text(terminal: string): string {
    const pane = this.panes.find((p) => p.name === terminal);
    return pane?.xterm ? terminalText(pane.xterm.term) : '';
  }

  /** Test hook: drop one terminal's socket as a network failure would. */
  drop(terminal: string): void {
    this.panes.find((p) => p.name === terminal)?.client?.drop();
  }

  // ---- terminals -------------------------------------------------------------------

  /** The pane's xterm of the wanted kind (live or replay), created on first use. */
  #terminal(pane: Pane, kind: 'live' | 'replay'): XTerm {
    if (pane.xterm && pane.kind === kind) return pane.xterm;
    pane.xterm?.dispose();
    pane.screen.querySelector('[data-placeholder]')?.remove();
    const x = openTerminal(pane.screen, {
      readOnly: kind === 'replay',
      screenReaderMode: screenReaderPreferred(),
      label: kind === 'replay' ? `Recording: ${pane.title}` : `Terminal: ${pane.title}`,
    });
    if (kind === 'live') {
      x.term.onData((d) => this.#input(pane, d));
      x.term.onBinary((d) => {
        const bytes = new Uint8Array(d.length);
        for (let i = 0; i < d.length; i++) bytes[i] = d.charCodeAt(i) & 0xff;
        pane.client?.send(bytes);
      });
      x.term.onResize(({ cols, rows }) => pane.client?.resize(cols, rows));
    }
    pane.xterm = x;
    pane.kind = kind;
    pane.el.dataset.kind = kind;
    return x;
  }

  #input(pane: Pane, data: string): void {
    if (pane.waitingForEnter) {
      if (data === '\r' && pane.client) {
        pane.waitingForEnter = false;
        this.#setBadge(pane, 'Connecting…');
        pane.client.connect();
      }
      return;
    }
    pane.client?.send(data);
  }

  /**
   * A terminal's socket URLs: the ticket that came with the session first, then a fresh one
   * for each reconnect. A session that is gone, or a token the server no longer takes, ends
   * the terminal instead of retrying.
   */
  #socketUrls(session: LabSession, t: SessionTerminal): () => Promise<string> {
    let first = t.ticket;
    return async () => {
      let ticket = first;
      first = undefined;
      if (!ticket) {
        try {
          ticket = await terminalTicket(session, t);
        } catch (err) {
          const status = (err as LabApiError).status;
          if (status === 404 || status === 410) throw new TerminalUrlRefused('session-ended', 'session gone');
          if (status === 401) throw new TerminalUrlRefused('bad-token', (err as Error).message);
          throw err;
        }
      }
      return terminalSocketUrl(t, ticket);
    };
  }

  #connect(pane: Pane, url: () => Promise<string>, gen: number): Promise<boolean> {
    const x = this.#terminal(pane, 'live');
    x.term.reset();
    x.term.options.disableStdin = false;
    x.term.options.cursorBlink = true;
    pane.client?.close();
    pane.waitingForEnter = false;
    this.#expectOutput(pane);
    return new Promise<boolean>((resolve) => {
      const client = new TerminalClient({
        url,
        size: () => ({ cols: x.term.cols, rows: x.term.rows }),
        sink: {
          write: (data, done) => {
            pane.gotOutput();
            x.term.write(data, done);
          },
          reset: () => x.term.reset(),
        },
        onStatus: (status, attempt) => {
          if (gen !== this.#gen) return;
          if (status === 'attached') {
            resolve(true);
            this.#paneAttached(pane);
          } else if (status === 'reconnecting') {
            this.#paneReconnecting(pane, attempt);
          } else if (status === 'connecting') {
            this.#expectOutput(pane);
          }
        },
        onMessage: (msg) => {
          if (gen !== this.#gen) return;
          if (msg.type === 'attached' || msg.type === 'expiring') this.#setExpiry(msg.expiresAt);
          if (msg.type === 'expiring')
            this.#announce(
              `This lab ends in ${minutesText(this.#expiresAt - Date.now())}. Press Extend for more time.`,
            );
          if (msg.type === 'notice') this.#announce(msg.message);
          if (msg.type === 'error')
            console.warn(`lab ${this.labId}/${pane.name}: ${msg.code}: ${msg.message}`);
        },
        onEnd: (reason) => {
          resolve(false);
          if (gen === this.#gen) this.#paneEnded(pane, reason);
        },
      });
      pane.client = client;
      client.connect();
    });
  }

  #expectOutput(pane: Pane): void {
    pane.firstOutput = new Promise<void>((resolve) => {
      pane.gotOutput = () => {
        pane.gotOutput = () => {};
        resolve();
      };
    });
  }

  #paneAttached(pane: Pane): void {
    this.#setBadge(pane, '');
    if (this.#reconnectTold && this.panes.every((p) => !p.client || p.client.status === 'attached')) {
      this.#reconnectTold = false;
      this.#announce('Reconnected: same shells as before.');
    }
  }

  #paneReconnecting(pane: Pane, attempt: number): void {
    this.#setBadge(pane, 'Reconnecting…');
    if (!this.#reconnectTold && this.#state === 'ready') {
      this.#reconnectTold = true;
      this.#announce('Connection lost: reconnecting…');
    }
    // After a few failures, ask whether the session still exists at all.
    if (attempt >= 3 && !this.#probing && this.#session) {
      const session = this.#session;
      const gen = this.#gen;
      this.#probing = true;
      void probeSession(session).then((r) => {
        this.#probing = false;
        if (r === 'gone' && gen === this.#gen) this.#sessionGone();
      });
    }
  }

  #paneEnded(pane: Pane, reason: EndReason): void {
    switch (reason) {
      case 'closed':
        return;
      case 'shell-exited':
        pane.waitingForEnter = true;
        this.#setBadge(pane, 'Shell exited');
        pane.xterm?.term.write('\r\n\x1b[2m[The shell exited. Press Enter for a new one.]\x1b[0m\r\n');
        return;
      case 'session-ended':
      case 'not-found':
      case 'bad-token':
        this.#sessionGone();
        return;
      case 'replaced':
        this.#fail(
          'This lab was opened in another window, which took over its terminals. Press Retry for a fresh sandbox here.',
        );
        return;
      case 'server-shutdown':
        this.#fail('The lab server is restarting. Press Retry in a moment for a fresh sandbox.');
        return;
      case 'policy':
        this.#fail(
          'The lab server closed this terminal: it received too many invalid messages from this page. Reload the page, then press Retry.',
        );
        return;
      case 'forbidden-origin':
        this.#fail('The lab server does not accept terminals from this address of the site.');
        return;
      case 'gave-up':
        this.#fail('Lost the connection to the lab. Check your network, then press Retry.');
        return;
    }
  }

  /** The server ended the session (time up, idle, stopped elsewhere). */
  #sessionGone(): void {
    const timeUp = this.#expiresAt - Date.now() < 5000;
    this.#gen++;
    this.#teardown();
    this.#setStartLabel('Start again');
    this.#setState(
      'expired',
      timeUp
        ? 'Time is up: this sandbox has been removed. Start again for a fresh one.'
        : 'This sandbox has ended (idle too long, or stopped elsewhere). Start again for a fresh one.',
    );
  }

  #fail(message: string): void {
    const session = this.#session;
    this.#gen++;
    this.#teardown();
    if (session) void deleteSession(session).catch(() => {});
    this.#setState('error', message);
  }

  #startFailed(err: LabApiError): void {
    switch (err.code) {
      case 'no_server':
        this.#setState('offline', 'Live labs are not available here.');
        return;
      case 'engine_unavailable': {
        const detail = this.root.querySelector<HTMLElement>('[data-engine-detail]');
        if (detail) setMessage(detail, err.message);
        this.#setState('engine-down', 'Live labs are unavailable right now.');
        return;
      }
      case 'out_of_capacity':
      case 'rate_limited': {
        const wait = err.retryAfter
          ? ` Try again in ${err.retryAfter < 90 ? `${Math.ceil(err.retryAfter)} seconds` : minutesText(err.retryAfter * 1000)}.`
          : '';
        this.#setState('error', `${err.message}${wait}`);
        return;
      }
      default:
        this.#setState('error', err.message || 'The lab could not start.');
    }
  }

  /** Closes sockets, stops timers, forgets the session; the screens stay, read-only. */
  #teardown(): void {
    this.#session = undefined;
    this.kernelView?.detach();
    this.#reconnectTold = false;
    clearInterval(this.#countdown);
    for (const p of this.panes) {
      p.client?.close();
      p.client = undefined;
      p.waitingForEnter = false;
      this.#setBadge(p, '');
      if (p.xterm && p.kind === 'live') {
        p.xterm.term.options.disableStdin = true;
        p.xterm.term.options.cursorBlink = false;
        p.xterm.term.blur();
      }
    }
  }

  // ---- recording -------------------------------------------------------------------

  #playerState(s: PlayerState): void {
    this.root.dataset.player = s;
    const label = this.root.querySelector<HTMLElement>('[data-action="play"] [data-label]');
    if (label)
      label.textContent = { ready: 'Play recording', playing: 'Pause', paused: 'Resume', ended: 'Replay' }[s];
    if (s === 'playing') this.#announce('Playing the recording.');
    if (s === 'ended') this.#announce('The recording has finished.');
  }

  #stopPlayer(): void {
    this.#player?.dispose();
    this.#player = undefined;
    delete this.root.dataset.player;
    const label = this.root.querySelector<HTMLElement>('[data-action="play"] [data-label]');
    if (label) label.textContent = 'Play recording';
  }

  // ---- presentation ----------------------------------------------------------------

  #setState(state: LabState, message: string): void {
    this.#state = state;
    this.root.dataset.state = state;
    this.#announce(message);
  }

  /** The status line is the lab's aria-live region: say each thing once, briefly. */
  #announce(message: string): void {
    const el = this.root.querySelector<HTMLElement>('[data-status]');
    if (el) setMessage(el, message);
  }

  #setBadge(pane: Pane, text: string): void {
    pane.badge.textContent = text;
    if (text) pane.el.dataset.conn = text === 'Reconnecting…' ? 'reconnecting' : 'notice';
    else delete pane.el.dataset.conn;
  }

  #setStartLabel(text: string): void {
    const label = this.root.querySelector<HTMLElement>('[data-action="start"] [data-label]');
    if (label) label.textContent = text;
  }

  #setExpiry(iso: string): void {
    const t = Date.parse(iso);
    if (Number.isFinite(t)) this.#expiresAt = t;
    this.#renderCountdown();
  }

  #startCountdown(): void {
    clearInterval(this.#countdown);
    this.#lowTimeTold = false;
    this.#renderCountdown();
    this.#countdown = setInterval(() => this.#renderCountdown(), 1000);
  }

  #renderCountdown(): void {
    const left = this.#expiresAt - Date.now();
    const el = this.root.querySelector<HTMLElement>('[data-countdown]');
    if (el) {
      el.textContent = formatLeft(left);
      el.setAttribute('datetime', `PT${Math.max(0, Math.ceil(left / 1000))}S`);
    }
    const low = left < LOW_TIME_MS;
    this.root.toggleAttribute('data-time-low', low);
    if (this.#state !== 'ready') return;
    if (low && !this.#lowTimeTold) {
      this.#lowTimeTold = true;
      this.#announce(`${minutesText(left)} left in this lab. Press Extend for more time.`);
    }
    // The server closes the terminals (4000) at expiry; this covers a lost close frame.
    if (left < -5000) {
      const session = this.#session;
      this.#sessionGone();
      if (session) void deleteSession(session).catch(() => {});
    }
  }

  #startElapsed(): void {
    const el = this.root.querySelector<HTMLElement>('[data-elapsed]');
    const t0 = performance.now();
    clearInterval(this.#elapsed);
    if (el) el.textContent = '';
    this.#elapsed = setInterval(() => {
      const s = Math.floor((performance.now() - t0) / 1000);
      if (el) el.textContent = s >= 1 ? `${s} s` : '';
    }, 250);
  }

  #stopElapsed(): void {
    clearInterval(this.#elapsed);
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

/** Every lab controller of this page (a page is the owner: it ends them on leave). */
const controllers = new Map<HTMLElement, LabController>();

export function controllerFor(root: HTMLElement, availability?: LabAvailability): LabController {
  let c = controllers.get(root);
  if (!c) {
    c = new LabController(root);
    if (availability) c.setAvailability(availability);
    controllers.set(root, c);
  }
  return c;
}

export function setAvailability(a: LabAvailability): void {
  for (const c of controllers.values()) c.setAvailability(a);
}

export function setScreenReaderMode(on: boolean): void {
  for (const c of controllers.values()) c.setScreenReaderMode(on);
}

// Leaving the page ends its sessions (fetch keepalive outlives the page; sendBeacon cannot
// send DELETE or an Authorization header).
addEventListener('pagehide', () => {
  for (const c of controllers.values()) c.leavePage();
});
addEventListener('pageshow', (ev) => {
  if (ev.persisted) for (const c of controllers.values()) c.cameBack();
});
addEventListener('online', () => {
  for (const c of controllers.values()) for (const p of c.panes) p.client?.retryNow();
});

/** For browser tests and for poking around in devtools. */
function find(labId: string): LabController | undefined {
  for (const c of controllers.values()) if (c.labId === labId) return c;
  return undefined;
}

declare global {
  interface Window {
    __containerLabs?: {
      state(lab: string): LabState | undefined;
      text(lab: string, terminal: string): string;
      drop(lab: string, terminal: string): void;
      session(lab: string): { id: string; token: string } | undefined;
    };
  }
}

window.__containerLabs = {
  state: (lab) => find(lab)?.state,
  text: (lab, terminal) => find(lab)?.text(terminal) ?? '',
  drop: (lab, terminal) => find(lab)?.drop(terminal),
  session: (lab) => {
    const s = find(lab)?.session;
    return s ? { id: s.id, token: s.token } : undefined;
  },
};
