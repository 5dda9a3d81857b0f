/**
 * Running a lesson's runnable blocks in a real lab session, as a reader's Run button does:
 * the block's lines typed into its terminal(s), one Enter each. Used by lessons.test.ts
 * and by scripts/record-labs.ts (which types key by key and keeps every output frame).
 *
 * Where a block's output starts and ends comes from bash's readline, not from the prompt's
 * look or from text appended to the command: readline turns bracketed paste on when it
 * starts reading a line (`ESC[?2004h`, before the prompt) and off when it has one
 * (`ESC[?2004l`). Between "off" and the next "on" is exactly what the command printed; the
 * prompt and the echo of what was typed are outside, so an `expect=` can never match the
 * command's own text.
 */

import type { RunBlock } from '../../src/plugins/run-block-index.ts';
import { plain, type SessionInfo, TermClient } from '../support/server.ts';
import { scaled } from '../support/slowness.ts';

export const READY = '\x1b[?2004h';
export const ACCEPTED = '\x1b[?2004l';

/** What the commands printed in `raw` terminal output: every stretch from ACCEPTED to the next READY, plain. */
export function commandOutput(raw: string): string {
  let out = '';
  let at = raw.indexOf(ACCEPTED);
  while (at !== -1) {
    const from = at + ACCEPTED.length;
    const next = raw.indexOf(READY, from);
    out += raw.slice(from, next === -1 ? undefined : next);
    if (next === -1) break;
    at = raw.indexOf(ACCEPTED, next);
  }
  return plain(out);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The outcome of one block in one terminal. */
export interface BlockRun {
  terminal: string;
  /** What the block's commands printed (no prompt, no echo). */
  output: string;
  /** The shell ended during the block (e.g. its container's PID 1 was killed). */
  exited: boolean;
  /** Set when the block did not give the prompt back in time (Ctrl-C was sent). */
  timedOut?: string;
}

/**
 * The terminals of one session, opened on first use with TermClient.open (a fresh
 * single-use ticket each), and opened again after their shell exited, as the page does
 * when the reader presses Enter for a new shell.
 */
export interface LabShellsOptions {
  /** Terminal size (default 400 × 50: wide enough that no typed line wraps). */
  cols?: number;
  rows?: number;
  /** Every output frame of every terminal as it arrives (the recorder's events). */
  onOutput?: (terminal: string, data: string) => void;
  /** Type key by key with this pause before each key (ms), as a person would; default: a line at once. */
  keyDelay?: () => number;
}

export class LabShells {
  readonly #base: string;
  readonly #session: SessionInfo;
  readonly #opts: LabShellsOptions;
  readonly #terms = new Map<string, TermClient>();

  constructor(base: string, session: SessionInfo, opts: LabShellsOptions = {}) {
    this.#base = base;
    this.#session = session;
    this.#opts = opts;
  }

  /** Terminal names of the session, in the lab's order. */
  get names(): string[] {
    return this.#session.terminals.map((t) => t.name);
  }

  /** The terminals a block's `run=` means. */
  targets(target: string): string[] {
    return target === 'both' ? this.names : [target];
  }

  async #shell(name: string, timeoutMs: number): Promise<TermClient> {
    const open = this.#terms.get(name);
    if (open && open.closeCode === null) return open;
    const { cols = 400, rows = 50, onOutput } = this.#opts;
    const term = await TermClient.open(this.#base, this.#session, name, { cols, rows });
    this.#terms.set(name, term);
    if (onOutput) {
      // open() resolves once attached: what came before (the replay, a first prompt) is in
      // `output` already, the rest arrives through onData.
      if (term.output) onOutput(name, term.output);
      term.onData((_bytes, text) => {
        if (text) onOutput(name, text);
      });
    }
    await term.ready();
    await waitRaw(term, 0, timeoutMs, `${name}: no prompt`, false);
    return term;
  }

  /** Opens every terminal of the session (each then shows its first prompt). */
  async openAll(): Promise<void> {
    await Promise.all(this.names.map((n) => this.#shell(n, 20_000)));
  }

  /** Types each line of `code` + Enter once readline waits for it; resolves when the shell waits again. */
  async run(name: string, code: string, timeoutMs = 60_000): Promise<BlockRun> {
    const term = await this.#shell(name, 20_000);
    const start = term.output.length;
    for (const line of code.split('\n')) {
      const mark = term.output.length;
      await this.#type(term, line);
      try {
        await waitRaw(term, mark, timeoutMs, `${name}: no prompt ${timeoutMs / 1000} s after "${line}"`);
      } catch (err) {
        if (term.closeCode !== null)
          return { terminal: name, output: commandOutput(term.output.slice(start)), exited: true };
        // Give the shell back for the next block.
        const at = term.output.length;
        term.send('\x03');
        await waitRaw(term, at, 5000, `${name}: no prompt after Ctrl-C`).catch(() => {});
        return {
          terminal: name,
          output: commandOutput(term.output.slice(start)),
          exited: false,
          timedOut: (err as Error).message,
        };
      }
      if (term.closeCode !== null) break;
    }
    return {
      terminal: name,
      output: commandOutput(term.output.slice(start)),
      exited: term.closeCode !== null,
    };
  }

  async #type(term: TermClient, line: string): Promise<void> {
    const delay = this.#opts.keyDelay;
    if (!delay) {
      term.send(`${line}\r`);
      return;
    }
    for (const ch of line) {
      await sleep(delay());
      term.send(ch);
    }
    await sleep(250);
    term.send('\r');
  }

  async close(): Promise<void> {
    await Promise.all([...this.#terms.values()].map((t) => t.close()));
  }
}

/**
 * Waits until readline asks for a line after `from` (after it took the line typed, unless
 * `typed` is false: the first prompt), or the socket closes.
 */
async function waitRaw(
  term: TermClient,
  from: number,
  timeoutMs: number,
  what: string,
  typed = true,
): Promise<void> {
  const deadline = Date.now() + scaled(timeoutMs);
  for (;;) {
    const raw = term.output.slice(from);
    const accepted = typed ? raw.indexOf(ACCEPTED) : 0;
    if (accepted !== -1 && raw.indexOf(READY, accepted) !== -1) return;
    if (term.closeCode !== null) return;
    if (Date.now() > deadline) throw new Error(`${what}; got:\n${plain(raw).slice(-1500)}`);
    await sleep(30);
  }
}

/** How to pick the tab a reader of this lab would follow, per `<Tabs syncKey>`. */
export type TabChooser = (ctx: { base: string; session: SessionInfo }) => Promise<string>;

export const TAB_CHOOSERS: Record<string, TabChooser> = {
  // Lesson 5's tabs: the reader picks the cgroup version their lab host runs.
  'cgroup-version': async ({ base, session }) => {
    const r = await fetch(`${base}/api/v1/sessions/${session.id}/cgroup`, {
      headers: { authorization: `Bearer ${session.token}` },
    });
    const body = (await r.json()) as { version?: string };
    if (r.status !== 200 || !body.version)
      throw new Error(`cgroup version: ${r.status} ${JSON.stringify(body)}`);
    return `cgroup v${body.version}`;
  },
};

/** For each `<Tabs>` set among `blocks`, the label this session follows. */
export async function chooseTabs(
  blocks: readonly RunBlock[],
  ctx: { base: string; session: SessionInfo },
): Promise<Map<number, string>> {
  const chosen = new Map<number, string>();
  const byGroup = new Map<string, string>();
  for (const b of blocks) {
    if (!b.tab || chosen.has(b.tab.set)) continue;
    const choose = TAB_CHOOSERS[b.tab.group];
    if (!choose)
      throw new Error(
        `${b.file}:${b.line}: no rule for which tab of <Tabs syncKey="${b.tab.group}"> a reader runs; add one to TAB_CHOOSERS in tests/integration/lessons-support.ts`,
      );
    let label = byGroup.get(b.tab.group);
    if (label === undefined) {
      label = await choose(ctx);
      byGroup.set(b.tab.group, label);
    }
    const labels = new Set(blocks.filter((x) => x.tab?.set === b.tab?.set).map((x) => x.tab?.label));
    if (!labels.has(label))
      throw new Error(
        `${b.file}:${b.line}: this lab host needs the tab "${label}", the page has ${[...labels].join(', ')}`,
      );
    chosen.set(b.tab.set, label);
  }
  return chosen;
}

/** Whether this session runs the block (it is in no tab, or in the chosen one). */
export function runsHere(b: RunBlock, chosen: ReadonlyMap<number, string>): boolean {
  return !b.tab || chosen.get(b.tab.set) === b.tab.label;
}
