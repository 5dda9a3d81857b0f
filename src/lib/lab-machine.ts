/**
 * The session state machine of one lab block: pure TypeScript, no DOM, no timers, no
 * network. It takes events (the reader's buttons, the server's answers, what the terminal
 * sockets report, the page coming and going) and says what to do next as effects (create
 * or delete a session, connect or close the terminals, announce a message); the lab
 * controller (lab-controller.ts) carries the effects out and feeds the results back.
 *
 *   idle → starting → ready → stopped | expired | error
 *   offline (no server) / engine-down (server without engine): note + recording
 *
 * Every start, stop, reset or end begins a new *run*: results that arrive for an older run
 * (a session created after Cancel, a socket of the previous sandbox) are stale, and a stale
 * session is deleted rather than used. Time comes from the injected clock.
 */
import type { LabAvailability } from './lab-health.ts';
import type { EndReason } from './terminal-client.ts';

export type LabState =
  | 'idle'
  | 'starting'
  | 'ready'
  | 'stopped'
  | 'expired'
  | 'error'
  | 'offline'
  | 'engine-down';

/** Why a session could not be created: the API's error code and message (lab-api.ts). */
export interface StartError {
  code: string;
  message: string;
  /** Seconds, from Retry-After. */
  retryAfter?: number;
}

export interface LabDisplay {
  /** The session's deadline, ms since the epoch; 0 before the first session. */
  expiresAt: number;
  /** An Extend request is on its way (the button waits). */
  extending: boolean;
  /** The start button says "Start again" once a session has ended here. */
  startAgain: boolean;
}

export type LabEvent<S> =
  | { type: 'start'; focus?: boolean }
  | { type: 'stop' }
  | { type: 'reset' }
  | { type: 'extend' }
  | { type: 'created'; run: number; session: S; expiresAt: string; terminals: readonly string[] }
  | { type: 'create-failed'; run: number; error: StartError }
  /** A delete the machine waited for (Reset) has settled. */
  | { type: 'deleted'; run: number }
  | { type: 'attached'; run: number; terminal: string }
  /** `restarting`: the server said it is restarting (an upgrade): the shells wait for it. */
  | { type: 'reconnecting'; run: number; terminal: string; attempt: number; restarting?: boolean }
  /** A terminal stopped for good: the refusal or ending the client reported, in the server's words if any. */
  | { type: 'ended'; run: number; terminal: string; reason: EndReason; message?: string }
  | { type: 'attach-timeout'; run: number }
  /** The server's deadline (`attached`), or its warning that the end is near (`expiring`). */
  | { type: 'expiry'; run: number; expiresAt: string; warn: boolean }
  | { type: 'notice'; run: number; message: string }
  | { type: 'extended'; run: number; expiresAt: string }
  | { type: 'extend-failed'; run: number; message: string }
  | { type: 'probed'; run: number; result: 'alive' | 'gone' | 'unknown' }
  /** About once a second while ready (the countdown). */
  | { type: 'tick' }
  /** The browser is online again. */
  | { type: 'online' }
  | { type: 'page-left' }
  | { type: 'page-back' }
  | { type: 'availability'; availability: LabAvailability };

export type LabEffect<S> =
  /** Put a message in the lab's status line (its polite live region). */
  | { type: 'announce'; message: string }
  | { type: 'create'; run: number }
  /** End a session on the server; with `report`, send `deleted` for that run when done. */
  | { type: 'delete'; session: S; keepalive?: boolean; report?: number }
  /** Open the session's terminals (fresh screens) and give them until the attach timeout. */
  | { type: 'connect'; run: number; session: S }
  /** All terminals are attached: countdown, kernel view, focus. */
  | { type: 'ready'; session: S; focus: boolean }
  /** Dispose what the last run owned: sockets, timers, panels; screens stay, read-only. */
  | { type: 'end-run' }
  | { type: 'extend'; run: number; session: S }
  /** Ask the server whether the session still exists (after reconnects keep failing). */
  | { type: 'probe'; run: number; session: S }
  | { type: 'retry-now' }
  | { type: 'clear-screens' }
  | { type: 'stop-player' }
  /** The server's explanation of why its engine is down. */
  | { type: 'engine-detail'; message: string };

/** Whether ending a run deletes its session: no, yes, yes and outliving the page, yes and report it. */
type Release = false | 'delete' | 'keepalive' | 'report';

/** How long all terminals may take to attach before the start counts as failed. */
export const ATTACH_TIMEOUT_MS = 20_000;
/** Below this much time left the countdown turns amber and the reader is told once. */
export const LOW_TIME_MS = 2 * 60_000;
/** A deadline this far past without the server's close frame: the session is over anyway. */
const LOST_CLOSE_MS = 5000;
/** Reconnect attempts after which the machine asks whether the session still exists. */
const PROBE_AFTER_ATTEMPTS = 3;

export const DID_NOT_CONNECT = 'The terminals did not connect. Press Retry, or reload the page.';
/** While the lab server restarts (an upgrade): the sandbox and its shells wait for it. */
export const RESTARTING = 'The lab server is restarting: your sandbox is kept. Reconnecting in a moment…';

export function minutesText(ms: number): string {
  const m = Math.round(ms / 60_000);
  return m <= 1 ? 'about a minute' : `${m} minutes`;
}

/** The status line's words for a terminal that ended for good, per reason (null: no message). */
function endedMessage(reason: EndReason, timeUp: boolean): { message: string; kind: 'gone' | 'fail' } | null {
  switch (reason) {
    case 'closed':
    case 'shell-exited':
      return null;
    case 'session-ended':
      return {
        kind: 'gone',
        message: timeUp
          ? 'Time is up: this sandbox has been removed. Start again for a fresh one.'
          : 'This sandbox has ended (idle too long, or stopped elsewhere). Start again for a fresh one.',
      };
    case 'not-found':
      return {
        kind: 'gone',
        message:
          'The lab server no longer has this sandbox (it ended, or the server restarted). Start again for a fresh one.',
      };
    case 'bad-token':
      return {
        kind: 'gone',
        message:
          'The lab server no longer accepts this page’s key to the sandbox. Start again for a fresh one.',
      };
    case 'replaced':
      return {
        kind: 'fail',
        message:
          'This lab was opened in another window, which took over its terminals. Press Retry for a fresh sandbox here.',
      };
    case 'server-shutdown':
      return {
        kind: 'fail',
        message: 'The lab server is restarting. Press Retry in a moment for a fresh sandbox.',
      };
    case 'policy':
      return {
        kind: 'fail',
        message:
          'The lab server closed this terminal: it received too many invalid messages from this page. Reload the page, then press Retry.',
      };
    case 'forbidden-origin':
      return {
        kind: 'fail',
        message:
          'The lab server does not accept terminals from this address of the site (a proxy in front of it may not pass the Host header on).',
      };
    case 'gave-up':
      return {
        kind: 'fail',
        message: 'Lost the connection to the lab. Check your network, then press Retry.',
      };
  }
}

function startFailedMessage(err: StartError): string {
  if (err.code === 'out_of_capacity' || err.code === 'rate_limited') {
    const s = err.retryAfter;
    const wait = s ? ` Try again in ${s < 90 ? `${Math.ceil(s)} seconds` : minutesText(s * 1000)}.` : '';
    return `${err.message}${wait}`;
  }
  return err.message || 'The lab could not start.';
}

export class LabMachine<S> {
  readonly #now: () => number;
  #state: LabState;
  #run = 0;
  #session: S | undefined;
  #terminals: readonly string[] = [];
  /** Terminals not attached yet (starting) or again (reconnecting). */
  readonly #waiting = new Set<string>();
  readonly #down = new Set<string>();
  #expiresAt = 0;
  #focus = false;
  #resetting = false;
  #lowTimeTold = false;
  /** What the reader was told while terminals are down: nothing, a lost connection, a restart. */
  #reconnectTold: false | 'lost' | 'restarting' = false;
  #probing = false;
  #extending = false;
  #leftPage = false;
  #again = false;
  #effects: LabEffect<S>[] = [];

  constructor(opts: { now: () => number; state?: LabState }) {
    this.#now = opts.now;
    this.#state = opts.state ?? 'idle';
  }

  get state(): LabState {
    return this.#state;
  }
  get run(): number {
    return this.#run;
  }
  /** The live session (undefined while creating, and after it ended). */
  get session(): S | undefined {
    return this.#session;
  }
  /** What the block shows besides its state and messages. */
  get display(): LabDisplay {
    return { expiresAt: this.#expiresAt, extending: this.#extending, startAgain: this.#again };
  }

  /** Applies one event; returns what to do, in order. */
  dispatch(ev: LabEvent<S>): LabEffect<S>[] {
    this.#effects = [];
    if ('run' in ev && ev.run !== this.#run) this.#stale(ev);
    else this.#apply(ev);
    return this.#effects;
  }

  #apply(ev: LabEvent<S>): void {
    switch (ev.type) {
      case 'start':
        if (this.#state === 'ready' || this.#state === 'starting') return;
        this.#newRun();
        this.#focus = ev.focus ?? false;
        this.#leftPage = false;
        this.#do({ type: 'stop-player' });
        this.#set('starting', 'Starting the lab: creating your sandbox…');
        this.#do({ type: 'create', run: this.#run });
        return;
      case 'stop': {
        if (!this.#live()) return;
        const creating = !this.#session;
        this.#endRun('delete');
        this.#again = true;
        this.#set(
          'stopped',
          creating ? 'Start cancelled.' : 'Lab stopped: its sandbox is gone. Start again for a fresh one.',
        );
        return;
      }
      case 'reset': {
        if (!this.#live()) return;
        // The old sandbox goes first: it still counts against the reader's quota.
        const waitForDelete = this.#endRun('report');
        this.#focus = true;
        this.#set('starting', 'Resetting: removing the old sandbox…');
        if (!waitForDelete) this.#create();
        return;
      }
      case 'deleted':
        if (!this.#resetting || this.#state !== 'starting') return;
        this.#resetting = false;
        this.#create();
        return;
      case 'created':
        if (this.#state !== 'starting' || this.#resetting) {
          this.#do({ type: 'delete', session: ev.session });
          return;
        }
        this.#session = ev.session;
        this.#terminals = [...ev.terminals];
        for (const t of ev.terminals) this.#waiting.add(t);
        this.#setExpiry(ev.expiresAt);
        this.#say('Starting the lab: connecting the terminals…');
        this.#do({ type: 'connect', run: this.#run, session: ev.session });
        if (this.#waiting.size === 0) this.#ready();
        return;
      case 'create-failed':
        this.#startFailed(ev.error);
        return;
      case 'attached':
        if (this.#state === 'starting') {
          this.#waiting.delete(ev.terminal);
          if (this.#waiting.size === 0 && this.#session) this.#ready();
        } else if (this.#state === 'ready') {
          this.#down.delete(ev.terminal);
          if (this.#reconnectTold && this.#down.size === 0) {
            this.#reconnectTold = false;
            this.#say('Reconnected: same shells as before.');
          }
        }
        return;
      case 'reconnecting':
        this.#down.add(ev.terminal);
        if (this.#state === 'ready' && ev.restarting && this.#reconnectTold !== 'restarting') {
          this.#reconnectTold = 'restarting';
          this.#say(RESTARTING);
        } else if (this.#state === 'ready' && !this.#reconnectTold) {
          this.#reconnectTold = 'lost';
          this.#say('Connection lost: reconnecting…');
        }
        if (ev.attempt >= PROBE_AFTER_ATTEMPTS && !this.#probing && this.#session) {
          this.#probing = true;
          this.#do({ type: 'probe', run: this.#run, session: this.#session });
        }
        return;
      case 'probed':
        this.#probing = false;
        if (ev.result === 'gone') this.#gone(endedMessage('session-ended', this.#timeUp())!.message);
        return;
      case 'ended':
        this.#ended(ev.terminal, ev.reason, ev.message);
        return;
      case 'attach-timeout':
        if (this.#state === 'starting' && this.#session) this.#fail(DID_NOT_CONNECT, true);
        return;
      case 'expiry':
        this.#setExpiry(ev.expiresAt);
        if (ev.warn) this.#say(`This lab ends in ${minutesText(this.#left())}. Press Extend for more time.`);
        return;
      case 'notice':
        this.#say(ev.message);
        return;
      case 'extend':
        if (this.#state !== 'ready' || !this.#session || this.#extending) return;
        this.#extending = true;
        this.#do({ type: 'extend', run: this.#run, session: this.#session });
        return;
      case 'extended':
        this.#extending = false;
        this.#setExpiry(ev.expiresAt);
        this.#lowTimeTold = false;
        this.#say(`Extended: ${minutesText(this.#left())} left.`);
        return;
      case 'extend-failed':
        this.#extending = false;
        this.#say(ev.message);
        return;
      case 'tick':
        this.#tick();
        return;
      case 'online':
        if (this.#session) this.#do({ type: 'retry-now' });
        return;
      case 'page-left':
        if (!this.#live()) return;
        // keepalive: the request outlives the page (sendBeacon cannot send DELETE).
        this.#endRun('keepalive');
        this.#leftPage = true;
        return;
      case 'page-back':
        if (!this.#leftPage) return;
        this.#leftPage = false;
        this.#again = true;
        this.#set('stopped', 'The lab ended when you left the page. Start again for a fresh sandbox.');
        return;
      case 'availability': {
        const a = ev.availability;
        const untouched =
          this.#state === 'idle' || this.#state === 'offline' || this.#state === 'engine-down';
        if (a.kind !== 'live' && untouched) this.#state = a.kind === 'no-server' ? 'offline' : 'engine-down';
        return;
      }
    }
  }

  /** An event of an older run: only a session it brings needs handling (delete it). */
  #stale(ev: LabEvent<S>): void {
    if (ev.type === 'created') this.#do({ type: 'delete', session: ev.session });
    // Results of an extend or a probe of an older run still end those requests.
    if (ev.type === 'extended' || ev.type === 'extend-failed') this.#extending = false;
    if (ev.type === 'probed') this.#probing = false;
  }

  #ended(terminal: string, reason: EndReason, serverMessage?: string): void {
    if (reason === 'closed') return;
    if (this.#state === 'starting' && this.#waiting.has(terminal) && reason === 'shell-exited') {
      this.#fail(DID_NOT_CONNECT, true);
      return;
    }
    const end = endedMessage(reason, this.#timeUp());
    if (!end) return;
    // A session the server ended with a reason of its own (the lab machine restarted) says it.
    if (end.kind === 'gone' && reason === 'session-ended' && serverMessage && !this.#timeUp())
      this.#gone(serverMessage);
    else if (end.kind === 'gone') this.#gone(end.message);
    // Another window holds the session now: ending it here would end theirs.
    else this.#fail(end.message, reason !== 'replaced');
  }

  #tick(): void {
    if (this.#state !== 'ready') return;
    const left = this.#left();
    if (left < LOW_TIME_MS && !this.#lowTimeTold) {
      this.#lowTimeTold = true;
      this.#say(`${minutesText(left)} left in this lab. Press Extend for more time.`);
    }
    // The server closes the terminals (4000) at expiry; this covers a lost close frame.
    if (left < -LOST_CLOSE_MS) this.#gone(endedMessage('session-ended', true)!.message, 'delete');
  }

  #ready(): void {
    const n = this.#terminals.length;
    this.#lowTimeTold = false;
    this.#set(
      'ready',
      `Ready: ${n > 1 ? 'type in either terminal' : 'type in the terminal'}. ${minutesText(this.#left())} left.`,
    );
    if (this.#session) this.#do({ type: 'ready', session: this.#session, focus: this.#focus });
  }

  /** The server ended the session (time up, idle, stopped elsewhere): usually nothing to delete. */
  #gone(message: string, release: Release = false): void {
    this.#endRun(release);
    this.#again = true;
    this.#set('expired', message);
  }

  #fail(message: string, release: boolean): void {
    this.#endRun(release && 'delete');
    this.#set('error', message);
  }

  #startFailed(err: StartError): void {
    switch (err.code) {
      case 'no_server':
        this.#set('offline', 'Live labs are not available here.');
        return;
      case 'engine_unavailable':
        this.#do({ type: 'engine-detail', message: err.message });
        this.#set('engine-down', 'Live labs are unavailable right now.');
        return;
      default:
        this.#set('error', startFailedMessage(err));
    }
  }

  #create(): void {
    this.#do({ type: 'clear-screens' });
    this.#say('Starting the lab: creating your sandbox…');
    this.#do({ type: 'create', run: this.#run });
  }

  /**
   * Forget the session and everything tied to it; results still on their way are stale.
   * `release` deletes the session on the server too ('report': and says when it is gone).
   * Returns whether a delete was asked for.
   */
  #endRun(release: Release = false): boolean {
    const session = this.#session;
    this.#do({ type: 'end-run' });
    this.#newRun();
    if (!session || !release) return false;
    if (release === 'report') this.#resetting = true;
    this.#do({
      type: 'delete',
      session,
      ...(release === 'keepalive' && { keepalive: true }),
      ...(release === 'report' && { report: this.#run }),
    });
    return true;
  }

  /** A session is live or being made. */
  #live(): boolean {
    return this.#state === 'ready' || this.#state === 'starting';
  }

  #newRun(): void {
    this.#run++;
    this.#session = undefined;
    this.#terminals = [];
    this.#waiting.clear();
    this.#down.clear();
    this.#resetting = false;
    this.#reconnectTold = false;
    this.#probing = false;
    this.#extending = false;
  }

  #timeUp(): boolean {
    return this.#left() < LOST_CLOSE_MS;
  }

  #left(): number {
    return this.#expiresAt - this.#now();
  }

  #setExpiry(iso: string): void {
    const t = Date.parse(iso);
    if (Number.isFinite(t)) this.#expiresAt = t;
  }

  #set(state: LabState, message: string): void {
    this.#state = state;
    this.#say(message);
  }

  #say(message: string): void {
    this.#do({ type: 'announce', message });
  }

  #do(effect: LabEffect<S>): void {
    this.#effects.push(effect);
  }
}
