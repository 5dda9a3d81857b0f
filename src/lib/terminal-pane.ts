/**
 * One terminal of a lab block (a `[data-terminal]` figure of Lab.astro): its xterm.js
 * terminal, live or replaying a recording, and while a session runs the TerminalClient
 * that connects it. The pane owns the xterm (and its subscriptions); `connect()` hands the
 * caller a Disposable for the client, so the session that opened it closes it.
 */
import type { ServerMessage } from '../../server/src/terminal/protocol.ts';
import { type Disposable, DisposableStore, toDisposable } from './disposable.ts';
import { screenReaderPreferred } from './reader-prefs.ts';
import type { EndReason, TerminalConnection, TerminalConnector, TerminalStatus } from './terminal-client.ts';
import { openTerminal, terminalText, type XTerm } from './xterm-setup.ts';

export interface PaneEvents {
  onStatus(status: TerminalStatus, attempt: number, info: { restarting: boolean }): void;
  onMessage(msg: ServerMessage): void;
  /** `message`: the server's own words for the end, if it gave any. */
  onEnd(reason: EndReason, message?: string): void;
}

export class TerminalPane implements Disposable {
  readonly name: string;
  readonly title: string;
  readonly el: HTMLElement;
  readonly recording: string | undefined;
  readonly #screen: HTMLElement;
  readonly #badge: HTMLElement;
  /** The xterm and what is subscribed to it; replaced when live and replay swap. */
  #term = new DisposableStore();
  #xterm: XTerm | undefined;
  #kind: 'live' | 'replay' | undefined;
  #client: TerminalConnection | undefined;
  /** After the shell exited: the next Enter opens a new shell. */
  #waitingForEnter = false;
  /** Resolves on the first output after (re)connecting: the shell is there. */
  #firstOutput: Promise<void> = Promise.resolve();
  #gotOutput: () => void = () => {};

  constructor(el: HTMLElement) {
    this.el = el;
    this.name = el.dataset.terminal ?? '';
    this.title = el.dataset.title ?? this.name;
    this.recording = el.dataset.recording;
    this.#screen = el.querySelector<HTMLElement>('[data-screen]') ?? el;
    this.#badge = el.querySelector<HTMLElement>('[data-badge]') ?? el;
  }

  /**
   * Connects the live terminal through a new connection (fresh screen, input on). Disposing
   * the result closes it and leaves the screen as it is, read-only.
   */
  connect(connector: TerminalConnector, events: PaneEvents): Disposable {
    const x = this.#terminal('live');
    x.term.reset();
    x.term.options.disableStdin = false;
    x.term.options.cursorBlink = true;
    this.#waitingForEnter = false;
    this.#expectOutput();
    const client = connector({
      size: () => ({ cols: x.term.cols, rows: x.term.rows }),
      sink: {
        write: (data, done) => {
          this.#gotOutput();
          x.term.write(data, done);
        },
        reset: () => x.term.reset(),
      },
      onStatus: (status, attempt, info) => {
        if (status === 'attached') this.#setBadge('');
        else if (status === 'reconnecting')
          this.#setBadge(info.restarting ? 'Server restarting…' : 'Reconnecting…');
        else if (status === 'connecting') this.#expectOutput();
        events.onStatus(status, attempt, info);
      },
      onMessage: (msg) => events.onMessage(msg),
      onEnd: (reason, _code, message) => {
        if (reason === 'shell-exited') this.#shellExited();
        events.onEnd(reason, message);
      },
    });
    this.#client = client;
    client.connect();
    return toDisposable(() => {
      if (this.#client === client) this.#client = undefined;
      client.close();
      this.#waitingForEnter = false;
      this.#setBadge('');
      if (this.#kind === 'live' && this.#xterm) {
        this.#xterm.term.options.disableStdin = true;
        this.#xterm.term.options.cursorBlink = false;
        this.#xterm.term.blur();
      }
    });
  }

  /** The read-only terminal a recording plays in. */
  replay(): XTerm {
    return this.#terminal('replay');
  }

  /** Types into the shell (queued by the client while its socket is down). */
  send(keys: string): void {
    this.#client?.send(keys);
  }

  /** Resolves on the shell's first output, after `ms`, or when `owner` is disposed. */
  prompted(ms: number, owner: DisposableStore): Promise<void> {
    return new Promise((resolve) => {
      const wait = owner.add(new DisposableStore());
      const finish = () => owner.drop(wait);
      wait.add(toDisposable(resolve));
      wait.timeout(finish, ms);
      void this.#firstOutput.then(finish);
    });
  }

  get focusable(): boolean {
    return this.#kind === 'live';
  }

  focus(): void {
    this.#xterm?.term.focus();
  }

  clear(): void {
    this.#xterm?.term.reset();
  }

  retryNow(): void {
    this.#client?.retryNow();
  }

  setScreenReaderMode(on: boolean): void {
    if (this.#xterm) this.#xterm.term.options.screenReaderMode = on;
  }

  /** What the terminal shows, scrollback included (the page's test hook). */
  text(): string {
    return this.#xterm ? terminalText(this.#xterm.term) : '';
  }

  /** Drops the socket as a network failure would (the page's test hook); the client reconnects. */
  drop(): void {
    this.#client?.drop();
  }

  dispose(): void {
    this.#client?.close();
    this.#client = undefined;
    this.#term.dispose();
    this.#xterm = undefined;
  }

  /** The pane's xterm of the wanted kind, created on first use. */
  #terminal(kind: 'live' | 'replay'): XTerm {
    if (this.#xterm && this.#kind === kind) return this.#xterm;
    this.#term.dispose();
    this.#term = new DisposableStore();
    this.#screen.querySelector('[data-placeholder]')?.remove();
    const x = this.#term.add(
      openTerminal(this.#screen, {
        readOnly: kind === 'replay',
        screenReaderMode: screenReaderPreferred(),
        label: kind === 'replay' ? `Recording: ${this.title}` : `Terminal: ${this.title}`,
      }),
    );
    if (kind === 'live') {
      this.#term.add(x.term.onData((d) => this.#input(d)));
      this.#term.add(
        x.term.onBinary((d) => {
          const bytes = new Uint8Array(d.length);
          for (let i = 0; i < d.length; i++) bytes[i] = d.charCodeAt(i) & 0xff;
          this.#client?.send(bytes);
        }),
      );
      this.#term.add(x.term.onResize(({ cols, rows }) => this.#client?.resize(cols, rows)));
    }
    this.#xterm = x;
    this.#kind = kind;
    this.el.dataset.kind = kind;
    return x;
  }

  #input(data: string): void {
    if (!this.#waitingForEnter) {
      this.#client?.send(data);
      return;
    }
    if (data === '\r' && this.#client) {
      this.#waitingForEnter = false;
      this.#setBadge('Connecting…');
      this.#client.connect();
    }
  }

  #shellExited(): void {
    this.#waitingForEnter = true;
    this.#setBadge('Shell exited');
    this.#xterm?.term.write('\r\n\x1b[2m[The shell exited. Press Enter for a new one.]\x1b[0m\r\n');
  }

  #expectOutput(): void {
    this.#firstOutput = new Promise<void>((resolve) => {
      this.#gotOutput = () => {
        this.#gotOutput = () => {};
        resolve();
      };
    });
  }

  #setBadge(text: string): void {
    this.#badge.textContent = text;
    if (text) this.el.dataset.conn = text === 'Reconnecting…' ? 'reconnecting' : 'notice';
    else delete this.el.dataset.conn;
  }
}
