/**
 * The operator's CLI, talking to a running server's admin API (server/src/ops/admin.ts):
 *
 *   npm run admin -- list [--json]     live sessions: age, lab, client, memory, pids, CPU
 *   npm run admin -- end <session-id>  end one session (its lab host is removed)
 *
 * Options: --url <base> (default CL_ADMIN_URL, else http://127.0.0.1:$PORT, PORT 4321).
 * The token comes from CL_ADMIN_TOKEN when the server has one (never from the command
 * line, where `ps` would show it); without it the server answers only loopback requests.
 * In the compose stack: `docker compose exec server node scripts/admin.ts list`.
 */
import { parseArgs } from 'node:util';

interface Resources {
  memoryBytes: number | null;
  memoryLimitBytes: number | null;
  pids: number | null;
  pidsLimit: number | null;
  cpuSeconds: number | null;
}

interface AdminSession {
  id: string;
  lab: string;
  client: string;
  ageSeconds: number;
  idleSeconds: number;
  terminals: { attached: number; open: number };
  resources: Resources | { error: string };
}

const USAGE = 'usage: npm run admin -- list [--json] | end <session-id>   [--url http://127.0.0.1:4321]';

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
    rows.push([
      s.id,
      s.lab,
      s.client,
      duration(s.ageSeconds),
      duration(s.idleSeconds),
      `${s.terminals.attached}/${s.terminals.open}`,
      ok ? `${mib(r.memoryBytes)}/${mib(r.memoryLimitBytes)}` : `(${r.error})`,
      ok ? `${r.pids ?? '-'}/${r.pidsLimit ?? '-'}` : '',
      ok && r.cpuSeconds !== null ? r.cpuSeconds.toFixed(2) : '',
    ]);
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
    if (body.error?.message) msg = `${res.status}: ${body.error.message}`;
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
    const body = (await res.json()) as {
      sessions: AdminSession[];
      pool: { size: number; ready: Record<string, number> };
      draining: boolean;
    };
    if (values.json) {
      console.log(JSON.stringify(body, null, 2));
      return 0;
    }
    console.log(body.sessions.length ? formatTable(body.sessions) : 'no live sessions');
    const ready = Object.entries(body.pool.ready)
      .map(([lab, n]) => `${lab} ${n}`)
      .join(', ');
    console.log(
      `\n${body.sessions.length} session(s); warm pool (${body.pool.size} per lab): ${ready || 'none'}${body.draining ? '; DRAINING' : ''}`,
    );
    return 0;
  }
  if (cmd === 'end' && id !== undefined && rest.length === 0) {
    const res = await call(base, 'DELETE', `/api/v1/admin/sessions/${encodeURIComponent(id)}`);
    if (res.status !== 204) throw await failure(res);
    console.log(`ended ${id}`);
    return 0;
  }
  console.error(USAGE);
  return 2;
}

if (import.meta.main) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      console.error(`admin: ${(err as Error).message}`);
      process.exit(1);
    },
  );
}
