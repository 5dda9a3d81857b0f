/**
 * The engine filter's decisions, as pure functions on parsed requests: which Engine API
 * calls pass, with which query and body, and what must be known about the container or
 * exec they name. The proxy (proxy.ts) does the I/O: it reads the body, asks the engine
 * what a container is, forwards what these functions return, and nothing else.
 *
 * The allowed set is what the Docker adapter (server/src/runtime/docker/docker-runtime.ts)
 * sends through dockerode, as logged during a full session of the real server (version,
 * info, containers/json, containers/create, start, exec create/start/resize/json for
 * terminals, panels and admin figures, DELETE, the lab hosts' own events), plus `_ping` (health checks, clients'
 * API version probe) and the inspection of a lab host (read-only; the adapter may look up
 * a lab host's user there). Everything else is refused: images, volumes, networks,
 * attach, archive, commit, stats, other events, system, swarm, plugins, ...
 *
 * Decisions are taken on the parsed path (segments, version prefix removed) and the parsed
 * query, and the request sent upstream is rebuilt from those parts, never copied from the
 * raw URL: what was checked is what the engine gets.
 */

import { z } from 'zod';
import {
  checkExecCreate,
  checkLabHostCreate,
  ExecStartBody,
  firstIssue,
  type LabHostPolicyOptions,
  parseLabUser,
} from '../runtime/docker/lab-host-policy.ts';
import { LABELS } from '../runtime/docker/labels.ts';

export interface Refusal {
  refused: true;
  status: 400 | 403 | 408 | 413;
  reason: string;
}

const refuse = (reason: string, status: Refusal['status'] = 403): Refusal => ({
  refused: true,
  status,
  reason,
});

export function isRefusal(x: unknown): x is Refusal {
  return typeof x === 'object' && x !== null && (x as Refusal).refused === true;
}

/** What the filter must know before forwarding. */
export type Requirement =
  /** The container exists and carries containerlabs.managed=true. */
  | { kind: 'container'; id: string }
  /** As above, and its Config.User is `user` (an exec runs as the lab host's own user). */
  | { kind: 'container'; id: string; user: string }
  /** The exec was created through this filter, or belongs to a managed container. */
  | { kind: 'exec'; id: string };

export type RouteName =
  | 'ping'
  | 'version'
  | 'info'
  | 'container.create'
  | 'container.list'
  | 'container.start'
  | 'container.remove'
  | 'container.inspect'
  | 'exec.create'
  | 'exec.start'
  | 'exec.resize'
  | 'exec.inspect'
  | 'events';

/** A request whose method, path and query are allowed (its body is checked next). */
export interface Matched {
  route: RouteName;
  method: string;
  /** Path and query to send upstream, rebuilt from the parsed parts. */
  path: string;
  /** The container or exec id in the path, if any. */
  id?: string;
  /** The request must be an HTTP upgrade (exec start: a raw stream both ways). */
  upgrade: boolean;
  /** Whether a JSON body is expected; otherwise any body is refused. */
  body: 'none' | 'json';
}

/** What to forward, once the body passed. */
export interface Plan {
  matched: Matched;
  /** JSON text to send upstream (re-serialised from the checked value). */
  body?: string;
  require?: Requirement;
}

export interface ParsedTarget {
  /** `v1.41` when the path had a version prefix. */
  version?: string;
  segments: string[];
  /** Each parameter's first value. */
  query: Map<string, string>;
  /** Parameters given more than once: refused wherever the engine would read them. */
  repeated: Set<string>;
}

/** A container or exec id as the engine returns it: the full 64 hex digits. Names and
 *  short prefixes are refused, so the id checked is the one the engine acts on. */
const FULL_ID = /^[0-9a-f]{64}$/;
const SEGMENT = /^[A-Za-z0-9_.:-]{1,256}$/;
/** API versions 1.40 and later. Older ones read some fields differently or not at all
 *  (e.g. CgroupnsMode before 1.41), so a body checked here could mean something else. */
const VERSION = /^v1\.(4\d|[5-9]\d)$/;
const ANY_VERSION = /^v\d+(\.\d+)?$/;

/**
 * Parses a request target into path segments and query parameters. Refuses anything a
 * router might read differently from us: percent-encoding or backslashes in the path,
 * empty, `.` or `..` segments (doubled or trailing slashes), absolute URLs, characters
 * outside printable ASCII. Repeated query parameters are noted: a call that reads one refuses it.
 */
export function parseTarget(url: string): ParsedTarget | Refusal {
  if (!url.startsWith('/')) return refuse('the request target must be a path');
  if (/[^\x21-\x7e]/.test(url)) return refuse('the request target has characters outside printable ASCII');
  const q = url.indexOf('?');
  const path = q < 0 ? url : url.slice(0, q);
  if (/[%\\#]/.test(path))
    return refuse('percent-encoding, backslashes and fragments are refused in the path');
  const segments = path.slice(1).split('/');
  for (const s of segments) {
    if (s === '') return refuse('empty path segment (doubled or trailing slash)');
    if (s === '.' || s === '..') return refuse('dot segments are refused in the path');
    if (!SEGMENT.test(s)) return refuse('a path segment has characters outside [A-Za-z0-9_.:-]');
  }
  let version: string | undefined;
  if (ANY_VERSION.test(segments[0]!)) {
    if (!VERSION.test(segments[0]!)) return refuse(`API version ${segments[0]} is refused (1.40 or later)`);
    version = segments.shift();
    if (segments.length === 0) return refuse('a version prefix alone is not a call');
  }
  const query = new Map<string, string>();
  const repeated = new Set<string>();
  if (q >= 0) {
    for (const [k, v] of new URLSearchParams(url.slice(q + 1))) {
      if (query.has(k)) repeated.add(k);
      else query.set(k, v);
    }
  }
  return { version, segments, query, repeated };
}

type QuerySpec = Record<string, RegExp>;
const BOOL = /^(true|false|1|0)$/;
const SMALL_INT = /^\d{1,5}$/;

function rebuild(t: ParsedTarget, query: Map<string, string>): string {
  const path = `${t.version ? `/${t.version}` : ''}/${t.segments.join('/')}`;
  const qs = new URLSearchParams([...query]).toString();
  return qs ? `${path}?${qs}` : path;
}

/** Keeps the parameters of `spec` (each must match), refuses any other. */
function strictQuery(t: ParsedTarget, spec: QuerySpec): Map<string, string> | Refusal {
  const out = new Map<string, string>();
  for (const [k, v] of t.query) {
    const re = spec[k];
    if (!re) return refuse(`query parameter "${k.slice(0, 40)}" is not allowed here`);
    if (t.repeated.has(k)) return refuse(`query parameter "${k}" is repeated`);
    if (!re.test(v)) return refuse(`query parameter "${k}" has a value that is not allowed`);
    out.set(k, v);
  }
  return out;
}

/**
 * `containers/json` must list only lab hosts: the label filter must include
 * containerlabs.managed=true (the engine ANDs label filters, so nothing else can show).
 */
function listQuery(t: ParsedTarget): Map<string, string> | Refusal {
  const out = new Map<string, string>();
  for (const [k, v] of t.query) {
    if (t.repeated.has(k)) return refuse(`query parameter "${k.slice(0, 40)}" is repeated`);
    if (k === 'all') {
      if (!BOOL.test(v)) return refuse('query parameter "all" must be true or false');
      out.set(k, v);
    } else if (k !== 'filters') {
      return refuse(`query parameter "${k.slice(0, 40)}" is not allowed here`);
    }
  }
  const raw = t.query.get('filters');
  if (raw === undefined) return refuse(`containers/json needs a label filter ${LABELS.managed}=true`);
  let filters: unknown;
  try {
    filters = JSON.parse(raw);
  } catch {
    return refuse('filters is not JSON', 400);
  }
  if (typeof filters !== 'object' || filters === null || Array.isArray(filters)) {
    return refuse('filters must be a JSON object', 400);
  }
  const keys = Object.keys(filters);
  if (keys.some((k) => k !== 'label')) return refuse('only label filters are allowed');
  const label = (filters as { label?: unknown }).label;
  // The engine takes both spellings: ["k=v"] and {"k=v": true}.
  let labels: string[] | undefined;
  if (Array.isArray(label) && label.every((l) => typeof l === 'string')) labels = label;
  else if (typeof label === 'object' && label !== null && Object.values(label).every((x) => x === true)) {
    labels = Object.keys(label);
  }
  if (!labels) return refuse('the label filter must be a list of strings', 400);
  if (!labels.includes(`${LABELS.managed}=true`)) {
    return refuse(`containers/json needs a label filter ${LABELS.managed}=true`);
  }
  out.set('filters', JSON.stringify({ label: labels }));
  return out;
}

/** The event kinds the server watches lab hosts for (DockerRuntime.watchLabHosts). */
const HOST_EVENTS = new Set(['die', 'destroy']);

/**
 * `events` must be the lab hosts' own: container events of the kinds in HOST_EVENTS, with
 * the label filter containerlabs.managed=true (the engine ANDs filters), nothing else. The
 * stream then says only what a listing of lab hosts would: which ones went, and their labels.
 */
function eventsQuery(t: ParsedTarget): Map<string, string> | Refusal {
  for (const k of t.query.keys())
    if (k !== 'filters') return refuse(`query parameter "${k.slice(0, 40)}" is not allowed here`);
  if (t.repeated.has('filters')) return refuse('query parameter "filters" is repeated');
  const raw = t.query.get('filters');
  const need = `events needs the filters type=container, event=die|destroy and label ${LABELS.managed}=true`;
  if (raw === undefined) return refuse(need);
  let f: unknown;
  try {
    f = JSON.parse(raw);
  } catch {
    return refuse('filters is not JSON', 400);
  }
  const strings = (x: unknown): x is string[] => Array.isArray(x) && x.every((v) => typeof v === 'string');
  if (typeof f !== 'object' || f === null || Array.isArray(f)) return refuse(need);
  const { type, event, label, ...rest } = f as Record<string, unknown>;
  if (Object.keys(rest).length > 0) return refuse(need);
  if (!strings(type) || type.length !== 1 || type[0] !== 'container') return refuse(need);
  if (!strings(event) || event.length === 0 || !event.every((e) => HOST_EVENTS.has(e))) return refuse(need);
  if (!strings(label) || !label.includes(`${LABELS.managed}=true`)) return refuse(need);
  return new Map([['filters', JSON.stringify({ type, event, label })]]);
}

/**
 * Matches method and target against the allowed calls. `upgrade`: the request asks for a
 * protocol upgrade (Connection: Upgrade), which only exec start may do.
 */
export function matchRequest(method: string, url: string, upgrade: boolean): Matched | Refusal {
  const t = parseTarget(url);
  if (isRefusal(t)) return t;
  const s = t.segments;
  const m = method;
  const path = s.join('/');

  const ok = (
    route: RouteName,
    query: Map<string, string> | Refusal,
    extra: { id?: string; upgrade?: boolean; body?: 'none' | 'json' } = {},
  ): Matched | Refusal => {
    if (isRefusal(query)) return query;
    const wantsUpgrade = extra.upgrade ?? false;
    if (upgrade && !wantsUpgrade) return refuse(`${route}: a protocol upgrade is not allowed here`);
    if (!upgrade && wantsUpgrade)
      return refuse(`${route}: must be an upgrade (Connection: Upgrade, Upgrade: tcp)`);
    return {
      route,
      method: m,
      path: rebuild(t, query),
      id: extra.id,
      upgrade: wantsUpgrade,
      body: extra.body ?? 'none',
    };
  };

  if (path === '_ping' && (m === 'GET' || m === 'HEAD')) return ok('ping', strictQuery(t, {}));
  if (path === 'version' && m === 'GET') return ok('version', strictQuery(t, {}));
  if (path === 'info' && m === 'GET') return ok('info', strictQuery(t, {}));
  if (path === 'containers/json' && m === 'GET') return ok('container.list', listQuery(t));
  if (path === 'events' && m === 'GET') return ok('events', eventsQuery(t));
  if (path === 'containers/create' && m === 'POST') {
    // dockerode repeats every body field in the query string; the engine reads only
    // `name` and `platform` there. Forward a valid name and nothing else.
    const name = t.query.get('name');
    if (t.repeated.has('name')) return refuse('query parameter "name" is repeated');
    if (t.query.has('platform')) return refuse('query parameter "platform" is not allowed');
    if (name !== undefined && !/^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/.test(name)) {
      return refuse('container name is not allowed');
    }
    return ok('container.create', new Map(name === undefined ? [] : [['name', name]]), { body: 'json' });
  }
  const id = s[1];
  if ((s[0] === 'containers' || s[0] === 'exec') && id !== undefined && !FULL_ID.test(id)) {
    return refuse(`${s[0]} id must be the full 64-digit id`);
  }
  if (s[0] === 'containers' && id !== undefined) {
    if (s.length === 2 && m === 'DELETE')
      return ok('container.remove', strictQuery(t, { force: BOOL, v: BOOL }), { id });
    if (s.length === 3) {
      if (s[2] === 'start' && m === 'POST') return ok('container.start', strictQuery(t, {}), { id });
      if (s[2] === 'json' && m === 'GET') return ok('container.inspect', strictQuery(t, {}), { id });
      if (s[2] === 'exec' && m === 'POST') return ok('exec.create', strictQuery(t, {}), { id, body: 'json' });
    }
  }
  if (s[0] === 'exec' && id !== undefined && s.length === 3) {
    if (s[2] === 'start' && m === 'POST') {
      return ok('exec.start', strictQuery(t, {}), { id, upgrade: true, body: 'json' });
    }
    if (s[2] === 'resize' && m === 'POST') {
      // dockerode sends the size in the query and again as a JSON body, which the engine ignores.
      return ok('exec.resize', strictQuery(t, { h: SMALL_INT, w: SMALL_INT }), { id, body: 'json' });
    }
    if (s[2] === 'json' && m === 'GET') return ok('exec.inspect', strictQuery(t, {}), { id });
  }
  return refuse(`${m} /${path.slice(0, 120)} is not an engine call this server makes`);
}

const Size = z.number().int().min(0).max(65535);
const ResizeBody = z.strictObject({ h: Size.optional(), w: Size.optional() });

export interface PlanOptions extends LabHostPolicyOptions {
  /** Every `Cmd` the server execs in a lab host (known-commands.ts). */
  commands: readonly (readonly string[])[];
}

/**
 * Checks the body of a matched request and says what to forward and what must hold for
 * the container or exec it names. `body` is the raw request body (empty when none).
 */
export function planRequest(matched: Matched, body: Buffer, opts: PlanOptions): Plan | Refusal {
  const { route, id } = matched;
  let json: unknown;
  if (matched.body === 'none') {
    if (body.length > 0) return refuse(`${route}: this call takes no body`, 400);
  } else if (body.length > 0) {
    try {
      json = JSON.parse(body.toString('utf8'));
    } catch (err) {
      return refuse(`malformed JSON body: ${(err as Error).message.slice(0, 100)}`, 400);
    }
  }

  switch (route) {
    case 'container.create': {
      const r = checkLabHostCreate(json, opts);
      if (!r.ok) return refuse(`container create: ${r.reason}`);
      return { matched, body: JSON.stringify(r.value) };
    }
    case 'exec.create': {
      const r = checkExecCreate(json, opts.commands);
      if (!r.ok) return refuse(`exec create: ${r.reason}`);
      return {
        matched,
        body: JSON.stringify(r.value),
        require: { kind: 'container', id: id!, user: r.value.User },
      };
    }
    case 'exec.start': {
      const r = ExecStartBody.safeParse(json ?? {});
      if (!r.success) return refuse(`exec start: ${firstIssue(r.error)}`);
      return { matched, body: JSON.stringify(r.data), require: { kind: 'exec', id: id! } };
    }
    case 'exec.resize': {
      const r = ResizeBody.safeParse(json ?? {});
      if (!r.success) return refuse(`exec resize: ${firstIssue(r.error)}`, 400);
      // Not forwarded: the engine reads the size from the query only.
      return { matched, require: { kind: 'exec', id: id! } };
    }
    case 'exec.inspect':
      return { matched, require: { kind: 'exec', id: id! } };
    case 'container.start':
    case 'container.remove':
    case 'container.inspect':
      return { matched, require: { kind: 'container', id: id! } };
    default:
      return { matched };
  }
}

/** What the engine says about a container (from `GET /containers/{id}/json`). */
export interface ContainerFacts {
  managed: boolean;
  /** Config.User */
  user: string;
}

/** Whether a container requirement holds, given the facts (pure). */
export function checkContainer(
  req: Extract<Requirement, { kind: 'container' }>,
  facts: ContainerFacts,
): Refusal | null {
  if (!facts.managed) return refuse(`container ${req.id.slice(0, 12)} is not a lab host (${LABELS.managed})`);
  if ('user' in req) {
    const want = parseLabUser(facts.user);
    const got = parseLabUser(req.user);
    if (!want || !got || want.uid !== got.uid || want.gid !== got.gid) {
      return refuse(`exec create: User must be the lab host's own user (${facts.user.slice(0, 30)})`);
    }
  }
  return null;
}
