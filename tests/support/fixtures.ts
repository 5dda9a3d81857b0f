/**
 * Fixtures for a describe block that needs the real server: made in before(), taken apart
 * in after() whatever happened in between (terminals closed, sessions deleted, the server
 * stopped, its instance's containers removed, the figures printed).
 *
 *   describe('…', () => {
 *     const lab = useLab('it-cgroups', 'cgroups', { terminals: ['host'] });
 *     test('…', async () => { await lab.term('host').exec('cgroup-info'); });
 *   });
 */
import assert from 'node:assert/strict';
import { after, before } from 'node:test';
import {
  createSession,
  deleteSession,
  labContainers,
  type RunningServer,
  removeInstanceContainers,
  requireEngine,
  type SessionInfo,
  sessionContainers,
  startServer,
  TermClient,
  type TermOptions,
} from './server.ts';

/** A shell prompt at the end of a line: `reader@labhost:~$ ` or `root@box:/# `. */
export const PROMPT = /[$#] $/m;

export interface TerminalOptions extends TermOptions {
  /** Wait for this before resolving (default PROMPT; false: only for `attached`). */
  prompt?: RegExp | false;
  /** How long the prompt may take (default 15 s). */
  promptMs?: number;
}

export interface ServerFixture {
  /** CL_INSTANCE of the server: `<tag>-<pid>`. */
  readonly instance: string;
  /** The running server (from the fixture's before() on). */
  readonly srv: RunningServer;
  /** Its base URL and port. */
  readonly base: string;
  readonly port: number;
  /** What the server printed so far. */
  logs(): string;
  /** Lines printed after the block, under its title (figures, what was seen). */
  readonly report: string[];
  /** A new session, deleted after the block unless `end` deleted it first. */
  session(lab: string, headers?: Record<string, string>): Promise<SessionInfo>;
  /** A terminal of a session, at its prompt; closed after the block. */
  terminal(s: SessionInfo, name: string, opts?: TerminalOptions): Promise<TermClient>;
  /** DELETE the session now; the status. */
  end(s: SessionInfo): Promise<number>;
  /** Run `fn` in after(), before the fixture's own cleanup (newest first). */
  defer(fn: () => unknown): void;
}

export interface ServerFixtureOptions {
  /** Title of the printed report (default: none printed). */
  report?: string;
  /** Fail at once, saying what to install or run, without an engine and the lab images. */
  engine?: boolean;
}

/** A real server for the tests of one describe block, with instance `<tag>-<pid>`. */
export function useServer(
  tag: string,
  env: Record<string, string> = {},
  opts: ServerFixtureOptions = {},
): ServerFixture {
  const instance = `${tag}-${process.pid}`;
  let srv: RunningServer | undefined;
  const sessions = new Set<SessionInfo>();
  const terms: TermClient[] = [];
  const deferred: (() => unknown)[] = [];
  const report: string[] = [];
  const running = (): RunningServer => {
    if (!srv) throw new Error(`${tag}: the server is not running (its before() failed or has not run)`);
    return srv;
  };

  before(async () => {
    if (opts.engine) await requireEngine(`these tests (${tag})`);
    srv = await startServer({ ...env, CL_INSTANCE: instance });
  });

  after(async () => {
    for (const fn of deferred.reverse()) await Promise.resolve(fn()).catch(() => {});
    await Promise.all(terms.map((t) => t.close()));
    if (srv) {
      for (const s of sessions) await deleteSession(srv.base, s).catch(() => {});
      await srv.stop();
    }
    await removeInstanceContainers(instance).catch(() => {});
    if (opts.report) console.log(`\n--- ${opts.report} ---\n${report.join('\n')}\n`);
  });

  return {
    instance,
    report,
    get srv() {
      return running();
    },
    get base() {
      return running().base;
    },
    get port() {
      return running().port;
    },
    logs: () => running().logs(),
    async session(lab, headers) {
      const s = await createSession(running().base, lab, headers);
      sessions.add(s);
      return s;
    },
    async terminal(s, name, o = {}) {
      const t = await TermClient.open(running().base, s, name, o);
      terms.push(t);
      if (o.prompt !== false) await t.waitFor(o.prompt ?? PROMPT, o.promptMs ?? 15_000);
      return t;
    },
    async end(s) {
      sessions.delete(s);
      return deleteSession(running().base, s);
    },
    defer(fn) {
      deferred.push(fn);
    },
  };
}

export interface LabFixture extends ServerFixture {
  /** The block's session. */
  readonly s: SessionInfo;
  /** One of the terminals opened in before() (at its prompt). */
  term(name: string): TermClient;
  /** DELETE the block's session; asserts 204 and that no container of it is left. */
  endAndCheck(): Promise<void>;
}

/**
 * A real server, an engine, and one session of `lab` with `terminals` open at their
 * prompts, for the tests of one describe block.
 */
export function useLab(
  tag: string,
  lab: string,
  opts: { env?: Record<string, string>; terminals?: string[]; report?: string } = {},
): LabFixture {
  const fx = useServer(tag, opts.env, { report: opts.report, engine: true });
  let session: SessionInfo | undefined;
  const open = new Map<string, TermClient>();

  before(async () => {
    session = await fx.session(lab);
    for (const name of opts.terminals ?? []) open.set(name, await fx.terminal(session, name));
  });

  const current = (): SessionInfo => {
    if (!session) throw new Error(`${tag}: no session (its before() failed)`);
    return session;
  };
  return {
    instance: fx.instance,
    report: fx.report,
    get srv() {
      return fx.srv;
    },
    get base() {
      return fx.base;
    },
    get port() {
      return fx.port;
    },
    logs: fx.logs,
    session: fx.session,
    terminal: fx.terminal,
    end: fx.end,
    defer: fx.defer,
    get s() {
      return current();
    },
    term(name) {
      const t = open.get(name);
      if (!t) throw new Error(`${tag}: terminal ${name} was not opened (opts.terminals)`);
      return t;
    },
    async endAndCheck() {
      const s = current();
      const status = await fx.end(s);
      if (status !== 204) throw new Error(`DELETE ${s.id} answered ${status}`);
      const left = await sessionContainers(s.id);
      if (left.length) throw new Error(`DELETE ${s.id} left ${left.length} container(s)`);
    },
  };
}

/**
 * Runs `fn` with a server of its own, then stops it with SIGTERM and checks what that must
 * leave behind: exit status 0 and no container of its instance. (A failure in `fn` is the
 * one reported: the server is then only stopped.)
 */
export async function withServer<T>(
  env: Record<string, string>,
  fn: (srv: RunningServer) => Promise<T>,
): Promise<T> {
  const srv = await startServer(env);
  let out: T;
  try {
    out = await fn(srv);
  } catch (err) {
    await srv.stop();
    throw err;
  }
  assert.equal(await srv.stop(), 0, 'the server exits 0 on SIGTERM');
  assert.deepEqual(await labContainers(srv.instance), [], 'its containers are removed at SIGTERM');
  return out;
}
