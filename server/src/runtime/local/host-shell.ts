/**
 * Local mode: the learner's own shell on their own machine (node-pty), so `ps -ef` in the
 * `host` terminal shows the real dockerd, containerd and shims around the lab host.
 * Only used when the server runs in local mode (loopback only, access token required).
 */
import { Duplex } from 'node:stream';
import * as pty from 'node-pty';
import type { TerminalProcess } from '../runtime.ts';

export interface HostShellOptions {
  shell: string;
  cwd: string;
  env: Record<string, string | undefined>;
}

export function openHostShell(opts: HostShellOptions, size: { cols: number; rows: number }): TerminalProcess {
  const p = pty.spawn(opts.shell, ['-l'], {
    name: 'xterm-256color',
    cols: size.cols,
    rows: size.rows,
    cwd: opts.cwd,
    env: { ...opts.env, TERM: 'xterm-256color' } as Record<string, string>,
  });
  let exitCode: number | null = null;
  let resolveExit!: (code: number | null) => void;
  const exited = new Promise<number | null>((r) => {
    resolveExit = r;
  });
  const stream = new Duplex({
    read() {
      p.resume();
    },
    write(chunk: Buffer, _enc, cb) {
      p.write(chunk.toString('utf8'));
      cb();
    },
    destroy(err, cb) {
      if (exitCode === null) p.kill();
      cb(err);
    },
  });
  p.onData((d) => {
    // Backpressure: stop reading the pty while our reader is behind.
    if (!stream.push(Buffer.from(d, 'utf8'))) p.pause();
  });
  p.onExit(({ exitCode: code }) => {
    exitCode = code;
    stream.push(null);
    resolveExit(code);
  });
  return {
    stream,
    exited,
    async resize(cols, rows) {
      if (exitCode === null) p.resize(cols, rows);
    },
    close() {
      if (exitCode === null) p.kill();
    },
  };
}
