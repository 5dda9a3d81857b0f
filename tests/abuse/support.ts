/**
 * Helpers of the abuse suite (not tests): an echo-latency probe for an honest terminal,
 * process memory sampling and raw HTTP from a chosen loopback source address. (Statistics:
 * tests/support/stats.ts; cleanup of an instance's containers: tests/support/engine.ts.)
 *
 * Network rule: everything here talks to 127.0.0.1 only (our own server). Source addresses
 * 127.0.0.2, 127.0.0.3, ... are loopback too; they let one machine act as several clients.
 */
import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import type { RunningServer, TermClient } from '../support/server.ts';

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

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
  #off: () => void = () => {};

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
    await term.waitFor(new RegExp(`@@ready${n + 1}`), 10_000, from);
    const p = new EchoProbe(term);
    p.#done = new RegExp(`@@done${n + 2}`);
    // Let dd start; then count from here.
    await sleep(200);
    p.#off = term.onData((bytes) => {
      p.#received += bytes;
      p.#waiter?.();
    });
    return p;
  }

  /** One round trip in ms; throws after `timeoutMs` without the byte coming back. */
  async once(timeoutMs = 10_000): Promise<number> {
    if (this.#sent >= PROBE_COUNT - 1) throw new Error('echo probe used up');
    const want = this.#sent + 1;
    const t0 = performance.now();
    this.#term.send('e');
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
  async during(until: Promise<unknown>, everyMs = 100, timeoutMs = 10_000): Promise<number[]> {
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
    this.#off();
    const from = this.#term.output.length;
    this.#term.send('z'.repeat(PROBE_COUNT - this.#sent));
    await this.#term.waitFor(this.#done, 10_000, from);
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
    req.setTimeout(60_000, () => req.destroy(new Error('request timed out')));
    if (opts.body !== undefined) req.write(opts.body);
    req.end();
  });
}

/** Health round trip in ms (throws unless 200). */
export async function healthMs(srv: RunningServer, timeoutMs = 10_000): Promise<number> {
  const t0 = performance.now();
  const r = await fetch(`${srv.base}/api/v1/health`, { signal: AbortSignal.timeout(timeoutMs) });
  await r.arrayBuffer();
  if (r.status !== 200) throw new Error(`health answered ${r.status}`);
  return performance.now() - t0;
}

/** Health round trips in ms, one every `everyMs`, until `ms` have passed (or `until` holds). */
export async function healthFor(
  srv: RunningServer,
  ms: number,
  opts: { everyMs?: number; until?: () => boolean; timeoutMs?: number } = {},
): Promise<number[]> {
  const samples: number[] = [];
  const end = performance.now() + ms;
  while (performance.now() < end && !opts.until?.()) {
    samples.push(await healthMs(srv, opts.timeoutMs));
    await sleep(opts.everyMs ?? 250);
  }
  return samples;
}
