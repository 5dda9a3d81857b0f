/**
 * The engine filter's log: one JSON object per line on stdout, pino's shape (`level` as a
 * number, `time` in ms, `msg`) so the server's and the filter's logs read alike. The
 * filter does not depend on pino: it must stay a small program with few imports.
 */

const LEVELS = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60, silent: Infinity } as const;
export type LevelName = keyof typeof LEVELS;

export interface Logger {
  debug(fields: Record<string, unknown>, msg: string): void;
  info(fields: Record<string, unknown>, msg: string): void;
  warn(fields: Record<string, unknown>, msg: string): void;
  error(fields: Record<string, unknown>, msg: string): void;
}

export function createLogger(
  level: LevelName,
  write: (line: string) => void = (l) => process.stdout.write(l),
): Logger {
  const min = LEVELS[level];
  const at =
    (name: Exclude<LevelName, 'silent'>) =>
    (fields: Record<string, unknown>, msg: string): void => {
      if (LEVELS[name] < min) return;
      write(
        `${JSON.stringify({ level: LEVELS[name], time: Date.now(), name: 'engine-filter', ...fields, msg })}\n`,
      );
    };
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

/** A logger that keeps its lines, for tests. */
export function memoryLogger(): Logger & { lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const log = createLogger('debug', (l) => {
    lines.push(JSON.parse(l));
  });
  return Object.assign(log, { lines });
}
