/**
 * The page's (and the VM build's) side of the guest's control channel, vm-agent on the
 * VM's third serial port (vm/guest/vm-agent): a request is one line, `<nonce> <command>`;
 * its answer is `\0CLBEGIN <nonce>\n`, the output, then `\0CLEND <nonce> <status>\n`. The
 * nonce is fresh and random per request, so no output (a reader's command line included)
 * can end an answer early, and stray bytes (a duplicate answer, output from before a
 * restore) are dropped. One request at a time; pure (bytes in, bytes out, injected
 * timers), so it is unit-tested without a VM.
 */

export interface AgentReply {
  status: number;
  output: Uint8Array;
}

export class AgentError extends Error {
  readonly code: 'timeout' | 'closed';
  constructor(code: 'timeout' | 'closed', message: string) {
    super(message);
    this.name = 'AgentError';
    this.code = code;
  }
}

interface Pending {
  command: string;
  /** Every nonce this request was sent with (a resend gets a new one). */
  nonces: string[];
  resolve(r: AgentReply): void;
  reject(e: Error): void;
  timeoutMs: number;
  resendMs: number;
}

export interface AgentChannelOptions {
  /** Bytes to the guest's serial port. */
  send(bytes: Uint8Array): void;
  /** A fresh random nonce, [A-Za-z0-9]{8,64}. */
  nonce?(): string;
  setTimeout?(fn: () => void, ms: number): unknown;
  clearTimeout?(h: unknown): void;
}

const enc = new TextEncoder();
const dec = new TextDecoder();
/** An answer larger than this is cut off and fails (a process snapshot is a few KB). */
const MAX_ANSWER = 4 << 20;

function randomNonce(): string {
  const b = new Uint8Array(16);
  crypto.getRandomValues(b);
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

export class AgentChannel {
  readonly #opts: Required<AgentChannelOptions>;
  #queue: Pending[] = [];
  #current: Pending | undefined;
  /** The nonce whose CLBEGIN arrived: the answer being collected. */
  #active: string | undefined;
  #buf = new Uint8Array(1024);
  #len = 0;
  #timer: unknown;
  #resend: unknown;
  #closed = false;

  constructor(opts: AgentChannelOptions) {
    this.#opts = {
      nonce: randomNonce,
      setTimeout: (fn, ms) => globalThis.setTimeout(fn, ms),
      clearTimeout: (h) => globalThis.clearTimeout(h as ReturnType<typeof setTimeout>),
      ...opts,
    };
  }

  /**
   * Sends `command` and resolves with its answer. `resendMs`: send it again (with a new
   * nonce) while no answer has begun, since input sent right after a restore can be lost.
   */
  request(command: string, opts: { timeoutMs?: number; resendMs?: number } = {}): Promise<AgentReply> {
    if (this.#closed) return Promise.reject(new AgentError('closed', 'the VM is gone'));
    if (!/^[a-z-]+( [A-Za-z0-9_-]+)*$/.test(command))
      return Promise.reject(new Error(`bad agent command: ${command}`));
    return new Promise((resolve, reject) => {
      this.#queue.push({
        command,
        nonces: [],
        resolve,
        reject,
        timeoutMs: opts.timeoutMs ?? 10_000,
        resendMs: opts.resendMs ?? 0,
      });
      this.#next();
    });
  }

  /** Bytes from the guest's serial port. */
  feed(bytes: Uint8Array | number): void {
    if (!this.#current) return; // nobody asked: stray output
    if (typeof bytes === 'number') this.#byte(bytes);
    else for (const b of bytes) if (this.#current) this.#byte(b);
  }

  /** Fails what is pending and refuses new requests (the VM was stopped). */
  close(): void {
    this.#closed = true;
    this.#stopTimers();
    const all = [...(this.#current ? [this.#current] : []), ...this.#queue];
    this.#current = undefined;
    this.#queue = [];
    for (const p of all) p.reject(new AgentError('closed', 'the VM is gone'));
  }

  #byte(b: number): void {
    if (this.#len === this.#buf.length) {
      if (this.#len >= MAX_ANSWER) {
        this.#fail(new Error('the VM’s answer was too large'));
        return;
      }
      const bigger = new Uint8Array(this.#buf.length * 2);
      bigger.set(this.#buf);
      this.#buf = bigger;
    }
    this.#buf[this.#len++] = b;
    if (b !== 0x0a) return;
    const line = this.#lastLine();
    if (line === undefined) return;
    if (this.#active === undefined) {
      const m = /^CLBEGIN ([A-Za-z0-9]+)$/.exec(line.text);
      if (m && this.#current!.nonces.includes(m[1]!)) {
        this.#active = m[1];
        this.#len = 0;
        this.#clearResend();
      } else {
        this.#len = 0; // before the answer: drop
      }
      return;
    }
    const m = /^CLEND ([A-Za-z0-9]+) (\d+)$/.exec(line.text);
    if (m && m[1] === this.#active) {
      const output = this.#buf.slice(0, line.start);
      const p = this.#current!;
      this.#reset();
      p.resolve({ status: Number(m[2]), output });
      this.#next();
    }
  }

  /** The text after the last NUL, if the buffer ends with "\0…\n" (a marker line). */
  #lastLine(): { text: string; start: number } | undefined {
    const end = this.#len - 1;
    const from = Math.max(0, end - 100);
    for (let i = end - 1; i >= from; i--) {
      if (this.#buf[i] === 0) return { text: dec.decode(this.#buf.subarray(i + 1, end)), start: i };
      if (this.#buf[i] === 0x0a) return undefined;
    }
    return undefined;
  }

  #fail(err: Error): void {
    const p = this.#current;
    this.#reset();
    p?.reject(err);
    this.#next();
  }

  #reset(): void {
    this.#stopTimers();
    this.#current = undefined;
    this.#active = undefined;
    this.#len = 0;
    if (this.#buf.length > 65536) this.#buf = new Uint8Array(1024);
  }

  #next(): void {
    if (this.#current || this.#closed) return;
    const p = this.#queue.shift();
    if (!p) return;
    this.#current = p;
    this.#active = undefined;
    this.#len = 0;
    this.#timer = this.#opts.setTimeout(() => {
      if (this.#current === p)
        this.#fail(new AgentError('timeout', `the VM did not answer "${p.command}" in time`));
    }, p.timeoutMs);
    const send = () => {
      const nonce = this.#opts.nonce();
      p.nonces.push(nonce);
      this.#opts.send(enc.encode(`${nonce} ${p.command}\n`));
      if (p.resendMs > 0)
        this.#resend = this.#opts.setTimeout(() => {
          if (this.#current === p && this.#active === undefined) send();
        }, p.resendMs);
    };
    send();
  }

  #clearResend(): void {
    if (this.#resend !== undefined) this.#opts.clearTimeout(this.#resend);
    this.#resend = undefined;
  }

  #stopTimers(): void {
    this.#opts.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#clearResend();
  }
}
