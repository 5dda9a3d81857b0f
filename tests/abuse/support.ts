/**
 * Helpers of the abuse suite (not tests): an echo-latency probe for an honest terminal,
 * process memory sampling, latency statistics, raw HTTP from a chosen loopback source
 * address, and cleanup of this suite's containers.
 *
 * Network rule: everything here talks to 127.0.0.1 only (our own server). Source addresses
 * 127.0.0.2, 127.0.0.3, ... are loopback too; they let one machine act as several clients.
 */
import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import type { RunningServer, TermClient } from '../support/server.ts';
import { scaled } from '../support/slowness.ts';

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

// ---- statistics ----------------------------------------------------------------------

export interface Stats {
  n: number;
  p50: number;
  p99: number;
  max: number;
}

export function stats(samples: readonly number[]): Stats {
  if (samples.length === 0) return { n: 0, p50: Number.NaN, p99: Number.NaN, max: Number.NaN };
  const s = [...samples].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)]!;
  return { n: s.length, p50: at(0.5), p99: at(0.99), max: s[s.length - 1]! };
}

export function fmtStats(label: string, st: Stats, unit = 'ms'): string {
  const f = (v: number) => (unit === 'ms' ? v.toFixed(1) : String(v));
  return `${label}: n=${st.n} p50=${f(st.p50)}${unit} p99=${f(st.p99)}${unit} max=${f(st.max)}${unit}`;
}

// ---- process memory -------------------------------------------------------------------

/** Resident set size of a process in KiB, from /proc/<pid>/status (VmRSS). */
export function rssKiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
  if (!m) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]);
}

/** dockerd's PID when it runs on this machine (for information only). */
export function dockerdPid(): number | undefined {
  for (const f of ['/var/run/docker.pid', '/run/docker.pid']) {
    try {
      const pid = Number(readFileSync(f, 'utf8').trim());
      if (pid > 0) return pid;
    } catch {}
  }
  return undefined;
}

/** Samples a value every `everyMs` until stopped. */
export function sampler(read: () => number, everyMs: number): { stop(): number[] } {
  const values: number[] = [read()];
  const timer = setInterval(() => {
    try {
      values.push(read());
    } catch {}
  }, everyMs);
  return {
    stop() {
      clearInterval(timer);
      values.push(read());
      return values;
    },
  };
}

// ---- echo latency of an honest terminal -----------------------------------------------

const PROBE_COUNT = 4096;

/**
 * Measures how fast an honest reader's terminal answers keystrokes: the shell runs
 * `dd bs=1` on a raw, non-echoing TTY, so every byte sent comes back exactly once, written
 * by a process of that reader's own lab host. One byte is in flight at a time; the time
 * from send to its return is one sample.
 */
export class EchoProbe {
  readonly #term: TermClient;
  #done: RegExp = /$^/;
  #sent = 0;
  #received = 0;
  #waiter: (() => void) | null = null;
  #onMessage = (data: Buffer, binary: boolean) => {
    if (!binary) return;
    this.#received += data.length;
    this.#waiter?.();
  };

  private constructor(term: TermClient) {
    this.#term = term;
  }

  /** Puts the terminal in echo mode; the terminal must be at a prompt. */
  static async start(term: TermClient): Promise<EchoProbe> {
    const n = Math.floor(Math.random() * 1e6);
    const from = term.output.length;
    term.send(
      `stty raw -echo; echo "@@ready$((${n}+1))"; dd bs=1 count=${PROBE_COUNT} status=none; stty sane; echo "@@done$((${n}+2))"\r`,
    );
    await term.waitFor(new RegExp(`@@ready${n + 1}`), scaled(10_000), from);
    const p = new EchoProbe(term);
    p.#done = new RegExp(`@@done${n + 2}`);
    // Let dd start; then count from here.
    await sleep(200);
    term.ws.on('message', p.#onMessage);
    return p;
  }

  /** One round trip in ms; throws after `timeoutMs` without the byte coming back. */
  async once(timeoutMs = scaled(10_000)): Promise<number> {
    if (this.#sent >= PROBE_COUNT - 1) throw new Error('echo probe used up');
    const want = this.#sent + 1;
    const t0 = performance.now();
    this.#term.ws.send(Buffer.from('e'), { binary: true });
    this.#sent++;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiter = null;
        reject(new Error(`no echo within ${timeoutMs} ms`));
      }, timeoutMs);
      const check = () => {
        if (this.#received >= want) {
          clearTimeout(timer);
          this.#waiter = null;
          resolve();
        }
      };
      this.#waiter = check;
      check();
    });
    return performance.now() - t0;
  }

  /** Samples every `everyMs` until `until` settles; returns the round trips in ms. */
  async during(until: Promise<unknown>, everyMs = 100, timeoutMs = scaled(10_000)): Promise<number[]> {
    let finished = false;
    const done = until.finally(() => {
      finished = true;
    });
    const samples: number[] = [];
    while (!finished) {
      samples.push(await this.once(timeoutMs));
      await Promise.race([sleep(everyMs), done.catch(() => {})]);
    }
    await done;
    return samples;
  }

  /** Feeds dd the rest of its bytes so it ends, and waits for the shell's prompt. */
  async stop(): Promise<void> {
    this.#term.ws.off('message', this.#onMessage);
    const from = this.#term.output.length;
    this.#term.ws.send(Buffer.alloc(PROBE_COUNT - this.#sent, 'z'), { binary: true });
    await this.#term.waitFor(this.#done, scaled(10_000), from);
  }
}

// ---- raw HTTP -------------------------------------------------------------------------

export interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** An HTTP request to our server from a chosen loopback source address. */
export function httpFrom(
  base: string,
  path: string,
  opts: { method?: string; body?: string; headers?: Record<string, string>; localAddress?: string } = {},
): Promise<RawResponse> {
  const url = new URL(path, base);
  if (url.hostname !== '127.0.0.1') throw new Error(`refusing to send traffic to ${url.hostname}`);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port: url.port,
        path: url.pathname + url.search,
        method: opts.method ?? 'GET',
        localAddress: opts.localAddress ?? '127.0.0.1',
        headers: {
          ...(opts.body !== undefined ? { 'content-type': 'application/json' } : {}),
          ...opts.headers,
        },
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d) => {
          body += d;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.setTimeout(scaled(60_000), () => req.destroy(new Error('request timed out')));
    if (opts.body !== undefined) req.write(opts.body);
    req.end();
  });
}

/** Health round trip in ms (throws unless 200). */
export async function healthMs(srv: RunningServer, timeoutMs = scaled(10_000)): Promise<number> {
  const t0 = performance.now();
  const r = await fetch(`${srv.base}/api/v1/health`, { signal: AbortSignal.timeout(timeoutMs) });
  await r.arrayBuffer();
  if (r.status !== 200) throw new Error(`health answered ${r.status}`);
  return performance.now() - t0;
}

// ---- containers -----------------------------------------------------------------------

/** Force-removes every container of the given instance (test cleanup; never others). */
export async function removeInstanceContainers(instance: string): Promise<number> {
  const { default: Docker } = await import('dockerode');
  const docker = new Docker();
  const list = await docker.listContainers({
    all: true,
    filters: { label: ['containerlabs.managed=true', `containerlabs.instance=${instance}`] },
  });
  await Promise.allSettled(list.map((c) => docker.getContainer(c.Id).remove({ force: true })));
  return list.length;
}
