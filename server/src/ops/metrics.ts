/**
 * Prometheus metrics (text format, GET /metrics). Fed by the session manager's events
 * (the same ones that become log lines), by the access check and drain refusals, and by
 * the runtime wrapper that counts engine errors; gauges are read at scrape time.
 *
 * One registry per server (no module-level singleton), so tests can build several.
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import { AppError } from '../errors.ts';
import type { Runtime, TerminalProcess } from '../runtime/runtime.ts';

/** What the gauges read at scrape time. */
export interface MetricsSources {
  sessionCount(): number;
  poolReady(): Record<string, number>;
  engineUp(): Promise<boolean>;
  draining(): boolean;
}

/** Every engine call countingRuntime counts; `resize` is a terminal's TTY resize. */
const ENGINE_OPERATIONS = [
  'info',
  'createLabHost',
  'removeLabHost',
  'renewLease',
  'listLabHosts',
  'openTerminal',
  'exec',
  'resize',
];
const END_REASONS = ['stopped', 'expired', 'idle', 'shutdown', 'host_gone', 'admin'];
const REFUSE_REASONS = [
  'out_of_capacity',
  'too_many_sessions',
  'rate_limited',
  'engine_unavailable',
  'image_missing',
  'internal',
  'access',
  'draining',
];

/** The counters and what each counts (their HELP lines). */
const HELP = {
  containerlabs_sessions_started_total:
    'Sessions started, per lab; pooled="true" when a warm-pool host was handed out.',
  containerlabs_sessions_refused_total:
    'Session starts refused, by reason (capacity, per-client cap, rate, engine, access, draining).',
  containerlabs_sessions_ended_total: 'Sessions ended, by reason.',
  containerlabs_engine_errors_total: 'Failed calls to the container engine, by operation and error code.',
  containerlabs_engine_calls_total:
    'Calls to the container engine, by operation (terminal resizes included), failed or not.',
  containerlabs_access_refused_total:
    'Lab requests refused for a missing or wrong access code, or for too many wrong ones (code and local modes).',
} as const;

export class Metrics {
  readonly registry = new Registry();
  readonly #started: Counter<'lab' | 'pooled'>;
  readonly #refused: Counter<'reason'>;
  readonly #ended: Counter<'reason'>;
  readonly #startSeconds: Histogram;
  readonly #engineErrors: Counter<'operation' | 'code'>;
  readonly #engineCalls: Counter<'operation'>;
  readonly #accessRefused: Counter<'reason'>;
  #sources: MetricsSources | undefined;

  constructor(opts: { labs: readonly string[]; mode: string; defaultMetrics?: boolean }) {
    const r = this.registry;
    const self = this;
    if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: r });
    new Gauge({
      name: 'containerlabs_info',
      help: 'Always 1; labels describe this server.',
      labelNames: ['mode'],
      registers: [r],
    }).set({ mode: opts.mode }, 1);
    new Gauge({
      name: 'containerlabs_sessions_active',
      help: 'Live lab sessions.',
      registers: [r],
      collect() {
        if (self.#sources) this.set(self.#sources.sessionCount());
      },
    });
    const pool = new Gauge({
      name: 'containerlabs_pool_ready',
      help: 'Ready lab hosts in the warm pool, per lab.',
      labelNames: ['lab'],
      registers: [r],
      collect() {
        if (!self.#sources) return;
        const ready = self.#sources.poolReady();
        for (const lab of opts.labs) this.set({ lab }, ready[lab] ?? 0);
      },
    });
    for (const lab of opts.labs) pool.set({ lab }, 0);
    new Gauge({
      name: 'containerlabs_engine_up',
      help: '1 when the container engine answers, else 0.',
      registers: [r],
      async collect() {
        if (self.#sources) this.set((await self.#sources.engineUp()) ? 1 : 0);
      },
    });
    new Gauge({
      name: 'containerlabs_draining',
      help: '1 while the server drains before exiting (new sessions refused).',
      registers: [r],
      collect() {
        this.set(self.#sources?.draining() ? 1 : 0);
      },
    });
    // A counter of this registry, its series present at 0 from the start (so a scrape shows
    // every label value, and rate() works from the first increment).
    const counter = <L extends string>(
      name: keyof typeof HELP,
      labelNames: L[],
      zero: Record<L, string>[] = [],
    ) => {
      const c = new Counter<L>({ name, help: HELP[name], labelNames, registers: [r] });
      for (const labels of zero) c.inc(labels as Partial<Record<L, string>>, 0);
      return c;
    };
    const byValue = <L extends string>(name: keyof typeof HELP, label: L, values: readonly string[]) =>
      counter(
        name,
        [label],
        values.map((v) => ({ [label]: v }) as Record<L, string>),
      );
    const pooled = opts.labs.flatMap((lab) => ['true', 'false'].map((p) => ({ lab, pooled: p })));
    this.#started = counter('containerlabs_sessions_started_total', ['lab', 'pooled'], pooled);
    this.#refused = byValue('containerlabs_sessions_refused_total', 'reason', REFUSE_REASONS);
    this.#ended = byValue('containerlabs_sessions_ended_total', 'reason', END_REASONS);
    this.#engineCalls = byValue('containerlabs_engine_calls_total', 'operation', ENGINE_OPERATIONS);
    this.#engineErrors = counter('containerlabs_engine_errors_total', ['operation', 'code']);
    this.#accessRefused = counter('containerlabs_access_refused_total', ['reason']);
    this.#startSeconds = new Histogram({
      name: 'containerlabs_session_start_seconds',
      // No labels (pooled or not: see sessions_started_total), which also keeps it readable
      // by simple text-format parsers that handle only unlabelled histograms.
      help: 'Time from a Start request being accepted to its lab host running (warm-pool hand-outs included).',
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30],
      registers: [r],
    });
  }

  /** Where gauges read from; set once the session manager exists. */
  bind(sources: MetricsSources): void {
    this.#sources = sources;
  }

  /** A session manager event (see SessionEvents). Unknown events are ignored. */
  onEvent(name: string, fields: Record<string, unknown>): void {
    switch (name) {
      case 'session.started': {
        const pooled = fields.pooled === true ? 'true' : 'false';
        this.#started.inc({ lab: String(fields.lab), pooled });
        if (typeof fields.ms === 'number') this.#startSeconds.observe(fields.ms / 1000);
        break;
      }
      case 'session.refused':
        this.#refused.inc({ reason: String(fields.reason) });
        break;
      case 'session.stopped':
        this.#ended.inc({ reason: String(fields.reason) });
        break;
    }
  }

  refused(reason: string): void {
    this.#refused.inc({ reason });
  }

  accessRefused(reason: 'missing' | 'wrong' | 'guessing'): void {
    this.#accessRefused.inc({ reason });
    this.#refused.inc({ reason: 'access' });
  }

  engineCall(operation: string): void {
    this.#engineCalls.inc({ operation });
  }

  engineError(operation: string, err: unknown): void {
    const code = err instanceof AppError ? err.code : 'internal';
    // A host that ended by itself is the session's news, not the engine's failure.
    if (code === 'session_ended') return;
    this.#engineErrors.inc({ operation, code });
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}

/**
 * The runtime, with every engine call and every failed one counted (the adapter stays
 * unaware). Terminals come back wrapped so that their resizes, each an Engine API call of
 * its own, are counted too.
 */
export function countingRuntime(runtime: Runtime, metrics: Metrics): Runtime {
  const wrap =
    <A extends unknown[], R>(operation: string, fn: (...args: A) => Promise<R>) =>
    async (...args: A): Promise<R> => {
      metrics.engineCall(operation);
      try {
        return await fn(...args);
      } catch (err) {
        metrics.engineError(operation, err);
        throw err;
      }
    };
  const countingTerminal = (proc: TerminalProcess): TerminalProcess => ({
    stream: proc.stream,
    exited: proc.exited,
    resize: wrap('resize', (cols: number, rows: number) => proc.resize(cols, rows)),
    close: () => proc.close(),
  });
  return {
    info: async () => {
      metrics.engineCall('info');
      const i = await runtime.info();
      if (!i.reachable) metrics.engineError('info', new AppError('engine_unavailable', i.error ?? ''));
      return i;
    },
    createLabHost: wrap('createLabHost', (req) => runtime.createLabHost(req)),
    removeLabHost: wrap('removeLabHost', (id) => runtime.removeLabHost(id)),
    renewLease: wrap('renewLease', (id, until) => runtime.renewLease(id, until)),
    listLabHosts: wrap('listLabHosts', () => runtime.listLabHosts()),
    watchLabHosts: (on) => runtime.watchLabHosts(on),
    openTerminal: wrap('openTerminal', async (id, t, size) =>
      countingTerminal(await runtime.openTerminal(id, t, size)),
    ),
    exec: wrap('exec', (id, cmd, opts) => runtime.exec(id, cmd, opts)),
  };
}
