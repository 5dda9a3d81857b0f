/**
 * The recorded session of a lab block (offline, engine down, or after an error): loads
 * each pane's asciicast and plays them on one clock (cast-player.ts) in the panes' replay
 * terminals. It owns the player; the Play button's label and `data-player` follow it.
 */
import { CastPlayer, type CastTrack, type PlayerState, parseCast } from './cast-player.ts';
import type { Disposable } from './disposable.ts';
import type { TerminalPane } from './terminal-pane.ts';

const LABELS: Record<PlayerState, string> = {
  ready: 'Play recording',
  playing: 'Pause',
  paused: 'Resume',
  ended: 'Replay',
};

export class LabRecording implements Disposable {
  readonly #root: HTMLElement;
  readonly #panes: readonly TerminalPane[];
  readonly #announce: (message: string) => void;
  #player: CastPlayer | undefined;
  /** Bumped by stop(): a load still on its way then starts nothing. */
  #loads = 0;

  constructor(root: HTMLElement, panes: readonly TerminalPane[], announce: (message: string) => void) {
    this.#root = root;
    this.#panes = panes;
    this.#announce = announce;
  }

  /** Play, pause, resume or replay. */
  async toggle(): Promise<void> {
    if (this.#player) {
      this.#player.toggle();
      return;
    }
    const panes = this.#panes.filter((p) => p.recording);
    if (panes.length === 0) return;
    const load = ++this.#loads;
    this.#announce('Loading the recording…');
    let casts: { pane: TerminalPane; text: string }[];
    try {
      casts = await Promise.all(
        panes.map(async (pane) => {
          const res = await fetch(pane.recording ?? '');
          if (!res.ok) throw new Error(`${res.status}`);
          return { pane, text: await res.text() };
        }),
      );
    } catch {
      if (load === this.#loads) this.#announce('Could not load the recording.');
      return;
    }
    if (load !== this.#loads) return;
    let tracks: CastTrack[];
    try {
      tracks = casts.map(({ pane, text }) => {
        const cast = parseCast(text);
        const x = pane.replay();
        return { cast, write: (d: string) => x.term.write(d), reset: () => x.term.reset() };
      });
    } catch {
      this.#announce('Could not load the recording.');
      return;
    }
    this.#player = new CastPlayer(tracks, { onState: (s) => this.#state(s) });
    this.#player.play();
  }

  /** Stops playing (a live session takes the terminals over). */
  stop(): void {
    this.#loads++;
    this.#player?.dispose();
    this.#player = undefined;
    delete this.#root.dataset.player;
    this.#setLabel(LABELS.ready);
  }

  dispose(): void {
    this.stop();
  }

  #state(s: PlayerState): void {
    this.#root.dataset.player = s;
    this.#setLabel(LABELS[s]);
    if (s === 'playing') this.#announce('Playing the recording.');
    if (s === 'ended') this.#announce('The recording has finished.');
  }

  #setLabel(text: string): void {
    const label = this.#root.querySelector<HTMLElement>('[data-action="play"] [data-label]');
    if (label) label.textContent = text;
  }
}
