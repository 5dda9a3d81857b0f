/**
 * A client of the QEMU guest agent (qemu-ga in the guest, a virtio serial port on the
 * VM, a unix socket here): how the host runs commands as root in the guest without any
 * network. The protocol is QMP's JSON, one command at a time; see qemu-ga-ref(7).
 *
 *   const ga = new GuestAgent('/path/qga.sock');
 *   const r = await ga.exec(['sh', '-c', 'cat /proc/cmdline']);   // { code, stdout, stderr }
 */
import { createConnection, type Socket } from 'node:net';

export interface GuestExecResult {
  code: number | null;
  /** Set when the process was killed by a signal. */
  signal?: number;
  stdout: string;
  stderr: string;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export class GuestAgent {
  readonly #path: string;
  #queue: Promise<unknown> = Promise.resolve();

  constructor(socketPath: string) {
    this.#path = socketPath;
  }

  /**
   * One command on a fresh connection. The agent answers in order and a connection that
   * saw a timeout may still get a late answer, so each call syncs first (guest-sync with a
   * random id) and reads answers until that id comes back.
   */
  #call(command: string, args: Record<string, unknown> | undefined, timeoutMs: number): Promise<unknown> {
    const run = async () => {
      const sock = createConnection(this.#path);
      try {
        return await new Promise<unknown>((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error(`guest agent: ${command} timed out`)), timeoutMs);
          const id = Math.floor(Math.random() * 2 ** 31);
          let buf = '';
          let synced = false;
          const send = (s: Socket, msg: object) => s.write(`${JSON.stringify(msg)}\n`);
          sock.on('error', (err) => {
            clearTimeout(timer);
            reject(err);
          });
          sock.on('connect', () => {
            // A 0xFF byte resets the agent's JSON parser (qemu-ga-ref(7), guest-sync).
            sock.write(Buffer.from([0xff]));
            send(sock, { execute: 'guest-sync', arguments: { id } });
          });
          sock.on('data', (d: Buffer) => {
            buf += Buffer.from(d.filter((b) => b !== 0xff)).toString('utf8');
            let nl = buf.indexOf('\n');
            while (nl >= 0) {
              const line = buf.slice(0, nl).trim();
              buf = buf.slice(nl + 1);
              nl = buf.indexOf('\n');
              if (!line) continue;
              let msg: { return?: unknown; error?: { desc?: string } };
              try {
                msg = JSON.parse(line);
              } catch {
                continue;
              }
              if (!synced) {
                if (msg.return === id) {
                  synced = true;
                  send(sock, args ? { execute: command, arguments: args } : { execute: command });
                }
                continue;
              }
              clearTimeout(timer);
              if (msg.error) reject(new Error(`guest agent: ${command}: ${msg.error.desc ?? 'error'}`));
              else resolve(msg.return);
              return;
            }
          });
        });
      } finally {
        sock.destroy();
      }
    };
    const p = this.#queue.then(run, run);
    this.#queue = p.catch(() => {});
    return p;
  }

  /** Resolves once the agent answers (the guest booted far enough to start it). */
  async ping(timeoutMs = 2000): Promise<void> {
    await this.#call('guest-ping', undefined, timeoutMs);
  }

  /** Runs a program as root in the guest and waits for it (stdout/stderr captured). */
  async exec(argv: string[], opts: { timeoutMs?: number; input?: string } = {}): Promise<GuestExecResult> {
    const [path, ...arg] = argv;
    if (!path) throw new Error('guest exec: empty command');
    const timeoutMs = opts.timeoutMs ?? 60_000;
    const started = (await this.#call(
      'guest-exec',
      {
        path,
        arg,
        'capture-output': true,
        ...(opts.input !== undefined ? { 'input-data': Buffer.from(opts.input).toString('base64') } : {}),
      },
      10_000,
    )) as { pid: number };
    const deadline = Date.now() + timeoutMs;
    for (let wait = 50; ; wait = Math.min(wait * 2, 1000)) {
      const st = (await this.#call('guest-exec-status', { pid: started.pid }, 10_000)) as {
        exited: boolean;
        exitcode?: number;
        signal?: number;
        'out-data'?: string;
        'err-data'?: string;
      };
      if (st.exited) {
        return {
          code: st.exitcode ?? null,
          ...(st.signal !== undefined ? { signal: st.signal } : {}),
          stdout: Buffer.from(st['out-data'] ?? '', 'base64').toString('utf8'),
          stderr: Buffer.from(st['err-data'] ?? '', 'base64').toString('utf8'),
        };
      }
      if (Date.now() > deadline)
        throw new Error(`guest exec ${argv.join(' ')}: still running after ${timeoutMs} ms`);
      await sleep(wait);
    }
  }

  /** `sh -c script` as root; throws with its output unless it exits 0. */
  async sh(script: string, timeoutMs?: number): Promise<string> {
    const r = await this.exec(['/bin/sh', '-c', script], { timeoutMs });
    if (r.code !== 0) throw new Error(`guest: ${script}: exit ${r.code}\n${r.stdout}${r.stderr}`);
    return r.stdout;
  }

  /** Asks the guest to power off (systemd's orderly shutdown). The agent may not answer. */
  async shutdown(): Promise<void> {
    await this.#call('guest-shutdown', { mode: 'powerdown' }, 5000).catch(() => {});
  }
}
