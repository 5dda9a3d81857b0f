/**
 * The operator's CLI, talking to a running server's admin API (server/src/ops/admin.ts):
 *
 *   npm run admin -- list [--json]     live sessions: age, lab, client, memory, pids, CPU
 *   npm run admin -- end <session-id>  end one session (its lab host is removed)
 *   npm run admin -- shutdown          a final shutdown: every session ends, the server exits
 *                                      (SIGTERM, by default, is a restart that keeps them)
 *
 * Options: --url <base> (default CL_ADMIN_URL, else http://127.0.0.1:$PORT, PORT 4321).
 * The token comes from CL_ADMIN_TOKEN when the server has one (never from the command
 * line, where `ps` would show it); without it the server answers only loopback requests.
 * In the compose stack: `docker compose exec server node scripts/admin.ts list`.
 */
import { parseArgs } from 'node:util';
import { type AdminSession, AdminSessionsReply } from '../server/src/contract/rest.ts';

// The list answer is checked against the contract (server/src/contract/rest.ts) before it
// is printed: a wrong type becomes a clear error, not a crash half-way through the table.
// Strings are still anyone's text (a client address, an engine error): safeText() makes
// them printable.
const ListAnswer = AdminSessionsReply;

// WARNING: what the CLI prints goes to the operator's terminal, which executes escape
// sequences: OSC can set the title or write the clipboard (OSC 52), CSI can clear or move
// over what is shown, CR overwrites a line, C1 controls (U+0080-U+009F, e.g. U+009B = CSI)
// act as ESC sequences in some terminals, bidi overrides and isolates (U+202A-U+202E,
// U+2066-U+2069) reorder what the eye reads. Every value from the server (or forged by a
// client, e.g. its address) goes through safeText(): controls (Cc), format characters (Cf:
// bidi, zero-width, BOM), line/paragraph separators and lone surrogates become "?", as
// `ps` shows them.
const UNPRINTABLE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}]/gu;

/** One value as plain, one-line text for a terminal (exported for tests). */
export function safeText(v: unknown): string {
  return String(v).replace(UNPRINTABLE, '?');
}

/**
 * JSON for a terminal: the same value (JSON.parse gives it back), but every character of
 * UNPRINTABLE written as a \uXXXX escape. JSON.stringify escapes only C0 controls; these
 * characters can only appear inside strings, where the escape means the same.
 */
export function safeJson(v: unknown): string {
  // (Raw newlines in JSON text are only the indentation's: inside strings they are \n.)
  return JSON.stringify(v, null, 2).replace(UNPRINTABLE, (c) =>
    c === '\n'
      ? c
      : Array.from(
          { length: c.length },
          (_, i) => `\\u${c.charCodeAt(i).toString(16).padStart(4, '0')}`,
        ).join(''),
  );
}

const USAGE =
  'usage: npm run admin -- list [--json] | end <session-id> | shutdown   [--url http://127.0.0.1:4321]';

function mib(n: number | null): string {
  return n === null ? '-' : `${(n / 1024 / 1024).toFixed(1)}`;
}

function duration(s: number): string {
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/** The `list` table (exported for tests). */
export function formatTable(sessions: AdminSession[]): string {
  const rows = [['SESSION', 'LAB', 'CLIENT', 'AGE', 'IDLE', 'TERMS', 'MEM MiB', 'PIDS', 'CPU s']];
  for (const s of sessions) {
    const r = s.resources;
    const ok = !('error' in r);
    const cells = [
      s.id,
      s.lab,
      s.client,
      duration(s.ageSeconds),
      duration(s.idleSeconds),
      `${s.terminals.attached}/${s.terminals.open}`,
      ok ? `${mib(r.memoryBytes)}/${mib(r.memoryLimitBytes)}` : `(${r.error})`,
      ok ? `${r.pids ?? '-'}/${r.pidsLimit ?? '-'}` : '',
      ok && r.cpuSeconds !== null ? r.cpuSeconds.toFixed(2) : '',
    ];
    rows.push(cells.map(safeText));
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  return rows
    .map((row) =>
      row
        .map((c, i) => c.padEnd(widths[i]!))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

async function call(base: string, method: string, path: string): Promise<Response> {
  const headers: Record<string, string> = {};
  const token = process.env.CL_ADMIN_TOKEN;
  if (token) headers.authorization = `Bearer ${token}`;
  try {
    return await fetch(new URL(path, base), { method, headers });
  } catch (err) {
    throw new Error(`cannot reach the server at ${base} (${(err as Error).cause ?? (err as Error).message})`);
  }
}

async function failure(res: Response): Promise<Error> {
  let msg = `${res.status} ${res.statusText}`;
  try {
    const body = (await res.json()) as { error?: { message?: string } };
    if (body.error?.message) msg = `${res.status}: ${safeText(body.error.message)}`;
  } catch {}
  return new Error(msg);
}

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      url: { type: 'string' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const base = values.url ?? process.env.CL_ADMIN_URL ?? `http://127.0.0.1:${process.env.PORT || 4321}`;
  const [cmd, id, ...rest] = positionals;
  if (cmd === 'list' && id === undefined) {
    const res = await call(base, 'GET', '/api/v1/admin/sessions');
    if (!res.ok) throw await failure(res);
    const raw: unknown = await res.json().catch(() => {
      throw new Error(`the server at ${base} did not answer JSON`);
    });
    const parsed = ListAnswer.safeParse(raw);
    if (!parsed.success) {
      const where = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).slice(0, 3);
      throw new Error(`the server's answer is not a session list (${where.join('; ')})`);
    }
    if (values.json) {
      // The server's own JSON, unknown fields included.
      console.log(safeJson(raw));
      return 0;
    }
    const body = parsed.data;
    console.log(body.sessions.length ? formatTable(body.sessions) : 'no live sessions');
    const ready = Object.entries(body.pool.ready)
      .map(([lab, count]) => `${safeText(lab)} ${count}`)
      .join(', ');
    console.log(
      `\n${body.sessions.length} session(s); warm pool (${body.pool.size} per lab): ${ready || 'none'}${body.draining ? '; DRAINING' : ''}`,
    );
    return 0;
  }
  if (cmd === 'shutdown' && id === undefined) {
    const res = await call(base, 'POST', '/api/v1/admin/shutdown');
    if (res.status !== 202) throw await failure(res);
    const body = (await res.json().catch(() => ({}))) as { sessions?: unknown };
    console.log(
      `final shutdown: the server ends its ${typeof body.sessions === 'number' ? body.sessions : '?'} session(s) and exits`,
    );
    return 0;
  }
  if (cmd === 'end' && id !== undefined && rest.length === 0) {
    const res = await call(base, 'DELETE', `/api/v1/admin/sessions/${encodeURIComponent(id)}`);
    if (res.status !== 204) throw await failure(res);
    console.log(`ended ${safeText(id)}`);
    return 0;
  }
  console.error(USAGE);
  return 2;
}

if (import.meta.main) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      console.error(`admin: ${safeText((err as Error).message)}`);
      process.exit(1);
    },
  );
}
