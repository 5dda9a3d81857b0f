/**
 * A lab running in the reader's tab: v86 (the emulator, loaded with this module, only once
 * the reader chose "Run in my browser") restores the lab's saved state (vm/build.ts made it),
 * and the VM's two serial ports become the lab's terminals while its virtio console is the
 * control channel (vm-agent) for the kernel view and the step checks. One LabVm owns its
 * emulator and everything listening to it; dispose() stops it and frees its memory.
 */
import wasmUrl from 'v86/build/v86.wasm?url';
import type { Disposable } from '../disposable.ts';
import type { CgroupReading, CheckResult, ProcessSnapshot } from '../lab-api.ts';
import type { ConnectionOptions } from '../terminal-client.ts';
import { AgentChannel } from './agent-channel.ts';
import { machineOptions, TERMINAL_PORTS } from './machine-options.ts';
import { fetchVmFiles, pruneVmCache, type VmFileRef } from './vm-files.ts';
import { cgroupReading, parseVmCgroup, parseVmProcesses, runVmCheck, type VmCheckDef } from './vm-inspect.ts';
import { VmTerminal } from './vm-terminal.ts';

/** What the page knows about a lab's VM, from the build (Lab.astro's `data-vm`). */
export interface VmAssets {
  state: VmFileRef;
  bios: VmFileRef;
  vgaBios: VmFileRef;
  memoryBytes: number;
  vgaMemoryBytes: number;
  /** bytes of v86.wasm (its URL comes from the bundler) */
  wasmBytes: number;
}

export type VmPhase = 'download' | 'restore';

type V86 = import('v86').V86;

interface Bus {
  send(event: string, data: unknown): void;
}

/** How long the guest may take to answer its first request after a restore. */
const RESTORE_TIMEOUT_MS = 60_000;

export class LabVm implements Disposable {
  readonly #emulator: V86;
  readonly agent: AgentChannel;
  readonly #listeners = new Map<number, Set<(b: number) => void>>();
  #disposed = false;
  #lastCpu: { at: number; usage: number } | undefined;
  /** Bytes that came over the network for this start (0: all from the cache). */
  readonly downloaded: number;

  private constructor(emulator: V86, downloaded: number) {
    this.#emulator = emulator;
    this.downloaded = downloaded;
    const bus = (emulator as unknown as { bus: Bus }).bus;
    this.agent = new AgentChannel({ send: (b) => bus.send('virtio-console1-input-bytes', b) });
    emulator.add_listener(
      'virtio-console1-output-bytes' as 'virtio-console0-output-bytes',
      (bytes: Uint8Array) => this.agent.feed(bytes),
    );
    for (const port of TERMINAL_PORTS) {
      const set = new Set<(b: number) => void>();
      this.#listeners.set(port, set);
      emulator.add_listener(`serial${port}-output-byte` as 'serial0-output-byte', (byte: number) => {
        for (const fn of set) fn(byte);
      });
    }
  }

  /**
   * Downloads (or takes from the cache) the emulator, the BIOS and the lab's state, restores
   * it, and resolves once the guest answers. `onProgress(phase, fraction)`: 0…1 over the
   * bytes while downloading, then the restore.
   */
  static async start(
    assets: VmAssets,
    opts: { onProgress(phase: VmPhase, fraction: number): void; signal?: AbortSignal },
  ): Promise<LabVm> {
    const refs: VmFileRef[] = [
      { url: wasmUrl, bytes: assets.wasmBytes },
      assets.bios,
      assets.vgaBios,
      assets.state,
    ];
    const [{ V86 }, fetched] = await Promise.all([
      import('v86'),
      fetchVmFiles(
        refs,
        (loaded, total) => opts.onProgress('download', total ? loaded / total : 1),
        opts.signal,
      ),
    ]);
    void pruneVmCache(refs.map((r) => r.url)).catch(() => {});
    opts.signal?.throwIfAborted();
    opts.onProgress('restore', 0);
    const [wasm, bios, vgaBios, state] = fetched.files as [Uint8Array, Uint8Array, Uint8Array, Uint8Array];
    // The whole buffer as it is (readAll's usual result), or a copy of the part that is the file.
    const buf = (b: Uint8Array) =>
      (b.byteOffset === 0 && b.byteLength === b.buffer.byteLength
        ? b.buffer
        : b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength)) as ArrayBuffer;
    const emulator = new V86({
      ...machineOptions(assets),
      wasm_fn: async (imports: WebAssembly.Imports) =>
        (await WebAssembly.instantiate(buf(wasm), imports)).instance.exports,
      bios: { buffer: buf(bios) },
      vga_bios: { buffer: buf(vgaBios) },
      initial_state: { buffer: buf(state) },
    });
    const vm = new LabVm(emulator, fetched.downloaded);
    try {
      await new Promise<void>((resolve, reject) => {
        emulator.add_listener('emulator-ready', () => resolve());
        opts.signal?.addEventListener('abort', () => reject(opts.signal?.reason), { once: true });
      });
      opts.onProgress('restore', 0.5);
      // WARNING: input sent right after a restore can be lost (seen in Chromium): resend.
      await vm.agent.request('ping', { timeoutMs: RESTORE_TIMEOUT_MS, resendMs: 400 });
      opts.onProgress('restore', 1);
      return vm;
    } catch (err) {
      vm.dispose();
      throw err;
    }
  }

  /** A terminal of the lab: the serial port of its position in lab.yaml. */
  terminal(index: number, opts: ConnectionOptions): VmTerminal {
    const port = TERMINAL_PORTS[index];
    if (port === undefined) throw new Error(`the VM has no terminal ${index}`);
    return new VmTerminal({
      ...opts,
      port,
      send: (b) => {
        if (!this.#disposed) this.#emulator.serial_send_bytes(port, b);
      },
      listen: (fn) => {
        this.#listeners.get(port)?.add(fn);
        return () => this.#listeners.get(port)?.delete(fn);
      },
      resize: (cols, rows) => this.#resize(port, cols, rows),
    });
  }

  async #resize(port: number, cols: number, rows: number): Promise<void> {
    if (this.#disposed) return;
    await this.agent.request(`resize ttyS${port} ${cols} ${rows}`).catch(() => {});
  }

  /** The process snapshot, read in the guest by the lab server's own script. */
  async processes(): Promise<ProcessSnapshot> {
    const r = await this.agent.request('processes', { timeoutMs: 20_000 });
    return parseVmProcesses(r.output);
  }

  async cgroup(): Promise<CgroupReading> {
    const r = await this.agent.request('cgroup', { timeoutMs: 20_000 });
    const snap = parseVmCgroup(r.output);
    const reading = cgroupReading(snap, this.#lastCpu);
    if (snap.cpu.usageSeconds !== null)
      this.#lastCpu = { at: Date.parse(snap.takenAt), usage: snap.cpu.usageSeconds };
    return reading;
  }

  /** Networking snapshot (interfaces, bridges, ping counters of every network namespace). */
  async network(): Promise<string> {
    const r = await this.agent.request('network', { timeoutMs: 30_000 });
    return new TextDecoder().decode(r.output);
  }

  check(def: VmCheckDef, answer: string | undefined): Promise<CheckResult> {
    return runVmCheck(def, this, answer);
  }

  get disposed(): boolean {
    return this.#disposed;
  }

  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.agent.close();
    for (const set of this.#listeners.values()) set.clear();
    void this.#emulator.destroy().catch(() => {});
  }
}
