/**
 * The VM in Node (the v86 npm package, the same emulator the page runs): boots the guest
 * once, then for each lab restores that boot, starts the lab (vm-agent's `lab <id>`), waits
 * for both terminals' prompts, lets the guest drop its caches and zero its free memory, and
 * saves the state. The page later restores exactly this state.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { AgentChannel } from '../../src/lib/vm/agent-channel.ts';
import { machineOptions } from '../../src/lib/vm/machine-options.ts';
import { CMDLINE, MEMORY_BYTES, VGA_MEMORY_BYTES } from '../guest.ts';

type V86 = import('v86').V86;
type V86Options = import('v86').V86Options;

/** v86's internal event bus: the virtio console's input has no method of its own. */
interface Bus {
  send(event: string, data: unknown): void;
}

const require = createRequire(import.meta.url);
export const V86_DIR = path.dirname(require.resolve('v86/package.json'));

const toArrayBuffer = (b: Uint8Array): ArrayBuffer =>
  b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;

export interface BootFiles {
  bios: Uint8Array;
  vgaBios: Uint8Array;
  kernel: Uint8Array;
  initrd: Uint8Array;
}

/** One running emulator with its four serial ports as byte streams. */
export class NodeVm {
  readonly emulator: V86;
  readonly agent: AgentChannel;
  /** What each terminal port printed, as text (for the build's log and prompt checks). */
  readonly out: string[] = ['', ''];
  /** The VGA text screen (80×25), kept from v86's screen events: the kernel's console. */
  readonly #screen: string[][] = Array.from({ length: 25 }, () => Array<string>(80).fill(' '));

  private constructor(emulator: V86) {
    this.emulator = emulator;
    const bus = (emulator as unknown as { bus: Bus }).bus;
    this.agent = new AgentChannel({ send: (b) => bus.send('virtio-console1-input-bytes', b) });
    for (const port of [0, 1]) {
      emulator.add_listener(`serial${port}-output-byte` as 'serial0-output-byte', (byte: number) => {
        this.out[port] = (this.out[port]! + String.fromCharCode(byte)).slice(-20000);
      });
    }
    emulator.add_listener('screen-put-char', ([row, col, chr]: [number, number, number]) => {
      const line = this.#screen[row];
      if (line && col < 80) line[col] = chr ? String.fromCharCode(chr) : ' ';
    });
    emulator.add_listener(
      'virtio-console1-output-bytes' as 'virtio-console0-output-bytes',
      (bytes: Uint8Array) => this.agent.feed(bytes),
    );
  }

  static async start(opts: {
    files: BootFiles;
    state?: ArrayBuffer;
    cmdline?: string;
    extra?: Partial<V86Options>;
  }): Promise<NodeVm> {
    const { V86: Emulator } = (await import('v86')) as typeof import('v86');
    const f = opts.files;
    const options: V86Options = {
      ...machineOptions({ memoryBytes: MEMORY_BYTES, vgaMemoryBytes: VGA_MEMORY_BYTES }),
      wasm_path: path.join(V86_DIR, 'build', 'v86.wasm'),
      bios: { buffer: toArrayBuffer(f.bios) },
      vga_bios: { buffer: toArrayBuffer(f.vgaBios) },
      ...(opts.state
        ? { initial_state: { buffer: opts.state } }
        : {
            bzimage: { buffer: toArrayBuffer(f.kernel) },
            initrd: { buffer: toArrayBuffer(f.initrd) },
            cmdline: opts.cmdline ?? CMDLINE,
          }),
      ...opts.extra,
    };
    const emulator = new Emulator(options);
    await new Promise<void>((resolve) => emulator.add_listener('emulator-ready', () => resolve()));
    return new NodeVm(emulator);
  }

  /**
   * Waits until the agent answers (the guest has booted, or a restore has settled): one
   * request, sent again every few seconds (with a new nonce) until its answer begins, so a
   * slow guest is never flooded; a kernel panic on the screen ends the wait at once.
   */
  async waitForAgent(timeoutMs: number): Promise<void> {
    let panicked = false;
    const watch = setInterval(() => {
      if (/Kernel panic/.test(this.screen())) {
        panicked = true;
        this.agent.close();
      }
    }, 1000);
    try {
      await this.agent.request('ping', { timeoutMs, resendMs: 3000 });
    } catch {
      throw new Error(
        `${panicked ? 'the guest kernel panicked' : `the guest's agent did not answer within ${timeoutMs / 1000} s`}; its screen:\n${this.screen()}`,
      );
    } finally {
      clearInterval(watch);
    }
  }

  /** Waits until terminal `port` ends with a shell prompt. */
  async waitForPrompt(port: number, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!/[$#] $/.test(this.out[port]!)) {
      if (Date.now() > deadline)
        throw new Error(
          `no prompt on ttyS${port} within ${timeoutMs / 1000} s; it shows: ${JSON.stringify(this.out[port]!.slice(-300))}`,
        );
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** The VGA text screen (the kernel's console, and init's messages). */
  screen(): string {
    return this.#screen
      .map((l) => l.join('').trimEnd())
      .join('\n')
      .trim();
  }

  async save(): Promise<ArrayBuffer> {
    return this.emulator.save_state();
  }

  async stop(): Promise<void> {
    this.agent.close();
    await this.emulator.destroy();
  }
}

export function readBootFiles(p: {
  bios: string;
  vgaBios: string;
  kernel: string;
  initrd: string;
}): BootFiles {
  return {
    bios: readFileSync(p.bios),
    vgaBios: readFileSync(p.vgaBios),
    kernel: readFileSync(p.kernel),
    initrd: readFileSync(p.initrd),
  };
}
