/**
 * A few lines saying what failed in a step of `npm test` and why, from the step's output:
 * the failing tests of node's spec reporter (its "failing tests:" section) with the first
 * lines of each error, or the step's last lines when it has no such section (lint,
 * typecheck, build). scripts/test-all.ts prints it after the summary, so that a log kept
 * only by its tail still says why.
 */
const MAX_LINES = 24;
const LINE_CHARS = 200;
const ERROR_LINES = 6;

export function failureDigest(step: string, output: string, maxLines = MAX_LINES): string {
  const lines = output.replace(/\r/g, '').split('\n');
  const cut = (l: string) => (l.length > LINE_CHARS ? `${l.slice(0, LINE_CHARS - 1)}…` : l);
  const out: string[] = [];
  const start = lines.findLastIndex((l) => /^\s*✖ failing tests:\s*$/.test(l));
  if (start >= 0) {
    let where = '';
    for (let i = start + 1; i < lines.length; i++) {
      const line = lines[i]!;
      const at = /^\s*test at (\S+)/.exec(line);
      if (at) {
        where = at[1]!;
        continue;
      }
      const name = /^\s*✖ (.*?)(?: \([\d.]+m?s\))?\s*$/.exec(line);
      if (!name) continue;
      // The error's message: its lines before the first stack frame (a terminal's text in a
      // message can be long: its first lines and its last, where it ended, are kept).
      const message: string[] = [];
      for (let j = i + 1; j < lines.length; j++) {
        const e = lines[j]!;
        if (/^\s*(test at |✖ )/.test(e) || /^\s+at \S/.test(e) || /^\s*}\s*$/.test(e)) break;
        if (e.trim()) message.push(`    ${cut(e.trim())}`);
      }
      const error =
        message.length > ERROR_LINES
          ? [...message.slice(0, 2), '    …', ...message.slice(-(ERROR_LINES - 3))]
          : message;
      // A suite that failed only through its tests adds nothing to their lines.
      if (error.length === 1 && /^ {4}'\d+ subtests? failed'$/.test(error[0]!)) continue;
      out.push(cut(`  ✖ ${name[1]}${where ? ` (${where})` : ''}`), ...error);
    }
  }
  if (!out.length)
    out.push(
      ...lines
        .filter((l) => l.trim())
        .slice(-8)
        .map((l) => `    ${cut(l.trim())}`),
    );
  if (out.length > maxLines)
    out.splice(maxLines - 1, out.length, `    … (${out.length - maxLines + 1} lines more)`);
  return [`${step}:`, ...out].join('\n');
}
