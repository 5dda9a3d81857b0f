/**
 * One place that makes xterm.js terminals look and behave like the rest of the site:
 * fonts, light/dark themes following Starlight's `data-theme`, fit-to-container, links,
 * copy/paste keys. Used by live labs and by the recording player.
 */
import { FitAddon } from '@xterm/addon-fit';
import { WebLinksAddon } from '@xterm/addon-web-links';
import { type ITheme, Terminal } from '@xterm/xterm';

/**
 * Monospace fonts that ship box-drawing glyphs (xterm's DOM renderer draws those with
 * the font, not with custom glyphs): SF Mono / Menlo on macOS, Cascadia / Consolas on
 * Windows, DejaVu / Liberation on Linux.
 */
export const TERMINAL_FONT =
  'ui-monospace, "SFMono-Regular", "Cascadia Mono", Menlo, Consolas, "DejaVu Sans Mono", "Liberation Mono", monospace';

export type ColorScheme = 'light' | 'dark';

const DARK: ITheme = {
  background: '#121419',
  foreground: '#dfe3ea',
  cursor: '#9bb8ff',
  cursorAccent: '#121419',
  selectionBackground: 'rgba(122, 162, 247, 0.38)',
  scrollbarSliderBackground: 'rgba(200, 205, 215, 0.12)',
  scrollbarSliderHoverBackground: 'rgba(200, 205, 215, 0.25)',
  scrollbarSliderActiveBackground: 'rgba(200, 205, 215, 0.35)',
  black: '#2a2e37',
  red: '#e5737f',
  green: '#9ccb7e',
  yellow: '#dcb86f',
  blue: '#7ea6f8',
  magenta: '#c98ae0',
  cyan: '#62bfca',
  white: '#c9ced8',
  brightBlack: '#6b7280',
  brightRed: '#f08f99',
  brightGreen: '#b6e096',
  brightYellow: '#edcb85',
  brightBlue: '#a0bcff',
  brightMagenta: '#dba6ee',
  brightCyan: '#86d5de',
  brightWhite: '#f3f5f8',
};

const LIGHT: ITheme = {
  background: '#ffffff',
  foreground: '#23262f',
  cursor: '#2f4fd8',
  cursorAccent: '#ffffff',
  selectionBackground: 'rgba(47, 79, 216, 0.22)',
  scrollbarSliderBackground: 'rgba(35, 38, 47, 0.1)',
  scrollbarSliderHoverBackground: 'rgba(35, 38, 47, 0.22)',
  scrollbarSliderActiveBackground: 'rgba(35, 38, 47, 0.32)',
  black: '#23262f',
  red: '#c0263e',
  green: '#2d7a1f',
  yellow: '#8a6100',
  blue: '#2f4fd8',
  magenta: '#8b32b3',
  cyan: '#0e6f82',
  white: '#6b7180',
  brightBlack: '#5b6170',
  brightRed: '#d2364f',
  brightGreen: '#378c29',
  brightYellow: '#9a6c00',
  brightBlue: '#3d5de6',
  brightMagenta: '#9c40c6',
  brightCyan: '#127f95',
  brightWhite: '#3a3f4b',
};

export function currentScheme(): ColorScheme {
  return document.documentElement.dataset.theme === 'light' ? 'light' : 'dark';
}

export function themeFor(scheme: ColorScheme): ITheme {
  return scheme === 'light' ? LIGHT : DARK;
}

/** Calls `cb` whenever Starlight's theme picker changes `<html data-theme>`. Returns a disposer. */
export function watchScheme(cb: (scheme: ColorScheme) => void): () => void {
  const mo = new MutationObserver(() => cb(currentScheme()));
  mo.observe(document.documentElement, { attributes: true, attributeFilter: ['data-theme'] });
  return () => mo.disconnect();
}

export interface XTerm {
  term: Terminal;
  /** Fit to the container now (also done automatically on resize). */
  fit(): void;
  dispose(): void;
}

export interface XTermOptions {
  /** Recording player: no input, no blinking cursor. */
  readOnly?: boolean;
  screenReaderMode?: boolean;
  /** Accessible name of the terminal's input (xterm's helper textarea). */
  label: string;
}

/**
 * Opens a terminal in `host` that follows the container's size (ResizeObserver + fit
 * addon) and the site's theme. The returned object owns the observers: dispose() them.
 */
export function openTerminal(host: HTMLElement, opts: XTermOptions): XTerm {
  const term = new Terminal({
    fontFamily: TERMINAL_FONT,
    fontSize: 13,
    lineHeight: 1.15,
    cursorBlink: !opts.readOnly,
    cursorStyle: 'block',
    cursorInactiveStyle: 'outline',
    disableStdin: opts.readOnly ?? false,
    screenReaderMode: opts.screenReaderMode ?? false,
    scrollback: 5000,
    // Raise low-contrast ANSI colours (e.g. blue on dark) to WCAG AA.
    minimumContrastRatio: 4.5,
    theme: themeFor(currentScheme()),
  });
  const fitAddon = new FitAddon();
  term.loadAddon(fitAddon);
  term.loadAddon(new WebLinksAddon());
  term.open(host);
  term.textarea?.setAttribute('aria-label', opts.label);

  // Copy/paste, kept simple (documented under each lab): select text, Ctrl+Shift+C copies;
  // Ctrl+Shift+V lets the browser fire its normal paste event, which xterm handles. Plain
  // Ctrl+C stays the interrupt key. Right-click opens the browser's menu (Copy / Paste),
  // because xterm moves its textarea under the pointer.
  // Tab belongs to the shell (completion), which would trap keyboard users (WCAG 2.1.2):
  // Esc then Tab (or Shift+Tab) within a second leaves the terminal instead.
  let escapedAt = 0;
  term.attachCustomKeyEventHandler((ev) => {
    if (ev.type !== 'keydown') return true;
    if (ev.key === 'Escape') {
      escapedAt = ev.timeStamp;
      return true;
    }
    if (ev.key === 'Tab' && ev.timeStamp - escapedAt < 1000) {
      escapedAt = 0;
      return false; // not sent to the shell: the browser moves the focus
    }
    if (!ev.ctrlKey || !ev.shiftKey || ev.altKey || ev.metaKey) return true;
    const key = ev.key.toLowerCase();
    if (key === 'c') {
      if (term.hasSelection()) void navigator.clipboard?.writeText(term.getSelection()).catch(() => {});
      ev.preventDefault();
      return false;
    }
    if (key === 'v') return false;
    return true;
  });

  let frame = 0;
  const fit = () => {
    cancelAnimationFrame(frame);
    frame = requestAnimationFrame(() => {
      if (host.clientWidth > 0 && host.clientHeight > 0) {
        try {
          fitAddon.fit();
        } catch {
          // the renderer is not ready yet (host just became visible); the next resize fits
        }
      }
    });
  };
  const ro = new ResizeObserver(fit);
  ro.observe(host);
  const unwatch = watchScheme((s) => {
    term.options.theme = themeFor(s);
    // WARNING: the DOM renderer keeps rows drawn with the old theme's contrast-adjusted
    // colours (inline styles) until they change; redraw them all.
    term.refresh(0, term.rows - 1);
  });
  fit();

  return {
    term,
    fit,
    dispose() {
      cancelAnimationFrame(frame);
      ro.disconnect();
      unwatch();
      term.dispose();
    },
  };
}

/** The terminal's text, wrapped lines joined (what a reader sees, scrollback included). */
export function terminalText(term: Terminal): string {
  const buf = term.buffer.active;
  const lines: string[] = [];
  for (let i = 0; i < buf.length; i++) {
    const line = buf.getLine(i);
    if (!line) continue;
    const text = line.translateToString(true);
    if (line.isWrapped && lines.length > 0) lines[lines.length - 1] += text;
    else lines.push(text);
  }
  while (lines.length > 0 && lines.at(-1) === '') lines.pop();
  return lines.join('\n');
}
