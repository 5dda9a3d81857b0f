/**
 * The two terminal measurements, the same for every transport (ByteTerm):
 *   - keystroke echo: type one key, time until the shell's answer arrives;
 *   - output throughput: run a command that prints a lot, count bytes at the client.
 */

import { plain } from '../../tests/support/terminal.ts';
import { MB } from './machine.ts';
import type { ByteTerm } from './terms.ts';
import { sleep } from './util.ts';

const plainTail = (s: string) => plain(s).slice(-120);

/** Wait until no output has arrived for `quietMs` (the prompt is drawn, the shell idles). */
export async function settle(term: ByteTerm, quietMs = 300, maxMs = 5000): Promise<void> {
  let last = performance.now();
  const off = term.onData(() => {
    last = performance.now();
  });
  const end = last + maxMs;
  try {
    while (performance.now() - last < quietMs && performance.now() < end) await sleep(20);
  } finally {
    off();
  }
}

/**
 * Keystroke echo: alternately type `x` (wait for the `x` readline echoes) and DEL (wait for
 * its erase sequence), so the line never grows. One sample per key, milliseconds from the
 * send to the first answering byte at the client. `gapMs` between keys (a fast typist).
 */
export async function measureEcho(
  term: ByteTerm,
  opts: { keys: number; warmup?: number; gapMs?: number; timeoutMs?: number },
): Promise<number[]> {
  const warmup = opts.warmup ?? 10;
  const gap = opts.gapMs ?? 5;
  const timeoutMs = opts.timeoutMs ?? 5000;
  await settle(term);
  const samples: number[] = [];
  for (let i = 0; i < warmup + opts.keys; i++) {
    const key = i % 2 === 0 ? 'x' : '\x7f';
    const ms = await new Promise<number>((resolve, reject) => {
      let t0 = 0;
      const timer = setTimeout(() => {
        off();
        reject(new Error(`${term.label}: no echo of key #${i} within ${timeoutMs} ms`));
      }, timeoutMs);
      const off = term.onData((_n, text) => {
        if (key === 'x' && !text.includes('x')) return;
        const t = performance.now() - t0;
        clearTimeout(timer);
        off();
        resolve(t);
      });
      t0 = performance.now();
      term.send(key);
    });
    if (i >= warmup) samples.push(ms);
    if (gap > 0) await sleep(gap);
  }
  // The line ends empty (an even number of keys, or one `x` left: clear it).
  term.send('\x15');
  await settle(term, 100, 1000);
  return samples;
}

export interface ThroughputRun {
  bytes: number;
  seconds: number;
  mbPerSecond: number;
  /** Messages (WebSocket frames, socket.io events) the client received. */
  frames: number;
  /** CPU seconds each watched process (or cgroup) used during the run. */
  cpu: Record<string, number>;
}

/** Named counters of CPU seconds (a process, a cgroup), read before and after a run. */
export type CpuWatch = Record<string, (() => number) | undefined>;

/**
 * Output throughput: `head -c <size> /dev/zero | base64` in the shell, timed from Enter to
 * the end marker the shell prints after it, bytes counted as they arrive at the client
 * (terminal bytes: base64 text plus the tty's CR before each LF).
 */
export async function measureThroughput(
  term: ByteTerm,
  opts: { size: string; timeoutMs?: number; watch?: CpuWatch },
): Promise<ThroughputRun> {
  await settle(term);
  const n = 100_000 + Math.floor(Math.random() * 800_000);
  const marker = `@@${n + 1}@@`;
  const timeoutMs = opts.timeoutMs ?? 120_000;
  const watch = Object.entries(opts.watch ?? {}).filter(
    (e): e is [string, () => number] => typeof e[1] === 'function',
  );
  const cpu0 = watch.map(([, read]) => read());
  const self0 = process.cpuUsage();
  const result = await new Promise<{ bytes: number; seconds: number; frames: number }>((resolve, reject) => {
    let bytes = 0;
    let frames = 0;
    let tail = '';
    let t0 = 0;
    const timer = setTimeout(() => {
      off();
      const last = JSON.stringify(plainTail(tail));
      reject(
        new Error(
          `${term.label}: throughput run unfinished after ${timeoutMs} ms (${bytes} bytes, last: ${last})`,
        ),
      );
    }, timeoutMs);
    const off = term.onData((len, text) => {
      bytes += len;
      frames++;
      // Search the previous tail plus the whole chunk: the marker may be followed by a
      // long prompt in the same chunk.
      const hay = tail + text;
      tail = hay.slice(-200);
      if (hay.includes(marker)) {
        const seconds = (performance.now() - t0) / 1000;
        clearTimeout(timer);
        off();
        resolve({ bytes, seconds, frames });
      }
    });
    t0 = performance.now();
    // The typed line holds `$((n+1))`, never the marker itself: only the shell's output can match.
    term.send(`head -c ${opts.size} /dev/zero | base64; echo "@@$((${n}+1))@@"\r`);
  });
  const self = process.cpuUsage(self0);
  const cpu: Record<string, number> = { 'bench client': (self.user + self.system) / 1e6 };
  watch.forEach(([name, read], i) => {
    cpu[name] = read() - (cpu0[i] as number);
  });
  await settle(term, 200, 3000);
  return { ...result, mbPerSecond: result.bytes / MB / result.seconds, cpu };
}
