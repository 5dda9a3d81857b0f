/**
 * One test host: QEMU booting the disk of hosts/build.ts, its Docker engine's API
 * forwarded to a port on the host's loopback, the guest agent on a unix socket.
 *
 * Network: `-netdev user,restrict=on`: the guest reaches nothing outside the VM (no
 * internet, not the host); the only way in is `hostfwd` from 127.0.0.1:<port> here to
 * the guest's port 2375, where systemd relays to the engine's socket (hosts/guest/).
 * Nothing here ever sends traffic to a guest or container address.
 *
 * Writes go to a qcow2 overlay beside the disk (`state.qcow2`): the base stays as built,
 * and what the runs load (the lab images of each engine) stays for the next run.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { accessSync, constants, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { release } from 'node:os';
import { join } from 'node:path';
import type { HostImage } from './build.ts';
import { GuestAgent } from './guest-agent.ts';

/** Which engine the guest starts (kernel command line `containerlabs.engine=`). */
export type EngineKind = 'rootful' | 'rootless';
export type Accel = 'kvm' | 'tcg';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export async function freeLoopbackPort(): Promise<number> {
  const srv = createServer();
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const addr = srv.address();
  srv.close();
  await once(srv, 'close');
  if (typeof addr !== 'object' || !addr) throw new Error('no free port');
  return addr.port;
}

export function qemuVersion(): string {
  const r = spawnSync('qemu-system-x86_64', ['--version'], { encoding: 'utf8' });
  if (r.status !== 0)
    throw new Error('qemu-system-x86_64 is missing: apt-get install qemu-system-x86 qemu-utils');
  return r.stdout.split('\n')[0] ?? '';
}

function kernelCommandLine(engine: EngineKind): string {
  return [
    'root=/dev/vda',
    'rw',
    'console=ttyS0',
    // A panic ends QEMU (with -no-reboot) instead of hanging until the boot timeout.
    'panic=-1',
    // Debian's defaults, spelled out because they are what the host matrix is about:
    // cgroup v2 only (systemd 257 has no v1), AppArmor as the LSM.
    'apparmor=1',
    'security=apparmor',
    `containerlabs.engine=${engine}`,
  ].join(' ');
}

export interface BootOptions {
  image: HostImage;
  engine: EngineKind;
  accel: Accel;
  /** Logs, sockets: one folder per VM. */
  runDir: string;
  memoryMiB?: number;
  cpus?: number;
  /** Give up when the engine has not answered after this long. */
  bootTimeoutMs?: number;
  /** Throwaway writes (-snapshot): nothing reaches the overlay (the KVM probe). */
  snapshot?: boolean;
  /** Success is the guest agent answering, not the engine (the KVM probe). */
  waitFor?: 'engine' | 'agent';
  /** A file the guest sees read-only as its second disk, /dev/vdb (the lab images' tar). */
  extraDisk?: string;
  log?: (line: string) => void;
}

export class Vm {
  readonly engine: EngineKind;
  readonly port: number;
  readonly agent: GuestAgent;
  readonly runDir: string;
  readonly bootSeconds: number;
  /** The extra disk the guest sees as /dev/vdb, if any. */
  readonly extraDisk: string | undefined;
  readonly #proc: ChildProcess;

  private constructor(o: {
    engine: EngineKind;
    port: number;
    agent: GuestAgent;
    runDir: string;
    bootSeconds: number;
    proc: ChildProcess;
    extraDisk: string | undefined;
  }) {
    this.engine = o.engine;
    this.port = o.port;
    this.agent = o.agent;
    this.runDir = o.runDir;
    this.bootSeconds = o.bootSeconds;
    this.extraDisk = o.extraDisk;
    this.#proc = o.proc;
  }

  /** `tcp://127.0.0.1:<port>`: what DOCKER_HOST must say to reach this guest's engine. */
  get dockerHost(): string {
    return `tcp://127.0.0.1:${this.port}`;
  }

  get consoleLog(): string {
    return join(this.runDir, 'console.log');
  }

  static async boot(o: BootOptions): Promise<Vm> {
    const log = o.log ?? (() => {});
    rmSync(o.runDir, { recursive: true, force: true });
    mkdirSync(o.runDir, { recursive: true });
    const overlay = join(o.image.dir, 'state.qcow2');
    if (!o.snapshot && !existsSync(overlay)) {
      const r = spawnSync(
        'qemu-img',
        ['create', '-q', '-f', 'qcow2', '-b', o.image.disk, '-F', 'raw', overlay],
        { encoding: 'utf8' },
      );
      if (r.status !== 0) throw new Error(`qemu-img create failed: ${r.stderr}`);
    }
    const port = await freeLoopbackPort();
    const agentSocket = join(o.runDir, 'qga.sock');
    const args = [
      ...(o.accel === 'kvm'
        ? ['-accel', 'kvm', '-cpu', 'host']
        : ['-accel', 'tcg,thread=multi', '-cpu', 'max']),
      '-m',
      String(o.memoryMiB ?? 4096),
      '-smp',
      String(o.cpus ?? 2),
      '-nodefaults',
      '-display',
      'none',
      '-no-reboot',
      '-kernel',
      o.image.kernel,
      '-initrd',
      o.image.initrd,
      '-append',
      kernelCommandLine(o.engine),
      '-drive',
      o.snapshot
        ? `file=${o.image.disk},if=virtio,format=raw,snapshot=on`
        : `file=${overlay},if=virtio,format=qcow2,discard=unmap`,
      ...(o.extraDisk ? ['-drive', `file=${o.extraDisk},if=virtio,format=raw,readonly=on`] : []),
      '-netdev',
      `user,id=net0,restrict=on,hostfwd=tcp:127.0.0.1:${port}-:2375`,
      '-device',
      'virtio-net-pci,netdev=net0',
      '-chardev',
      `socket,id=qga0,path=${agentSocket},server=on,wait=off`,
      '-device',
      'virtio-serial-pci',
      '-device',
      'virtserialport,chardev=qga0,name=org.qemu.guest_agent.0',
      '-serial',
      `file:${join(o.runDir, 'console.log')}`,
    ];
    writeFileSync(join(o.runDir, 'qemu.args'), `${args.join('\n')}\n`);
    const t0 = performance.now();
    const proc = spawn('qemu-system-x86_64', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let qemuOut = '';
    const keep = (d: Buffer) => {
      qemuOut += d.toString('utf8');
    };
    proc.stdout!.on('data', keep);
    proc.stderr!.on('data', keep);
    let exited: number | null | undefined;
    proc.once('exit', (code) => {
      exited = code;
      writeFileSync(join(o.runDir, 'qemu.log'), qemuOut);
    });
    const agent = new GuestAgent(agentSocket);
    const deadline = Date.now() + (o.bootTimeoutMs ?? 300_000);
    const fail = async (why: string): Promise<never> => {
      if (exited === undefined) {
        proc.kill('SIGKILL');
        await once(proc, 'exit').catch(() => {});
      }
      const tail = existsSync(join(o.runDir, 'console.log'))
        ? readFileSync(join(o.runDir, 'console.log'), 'utf8').split('\n').slice(-15).join('\n')
        : '';
      throw new Error(`${o.engine} host (${o.accel}): ${why}\n${qemuOut.trim()}\n--- console:\n${tail}`);
    };
    for (let n = 0; ; n++) {
      if (exited !== undefined) return fail(`QEMU exited (${exited})`);
      // A KVM that cannot run this guest pauses it and prints this; it would never boot.
      if (/KVM internal error|emulation failure|failed to set MSR/.test(qemuOut)) return fail('KVM failed');
      if (Date.now() > deadline) return fail(`not ready after ${o.bootTimeoutMs ?? 300_000} ms`);
      const ready =
        (o.waitFor ?? 'engine') === 'agent'
          ? await agent.ping(1000).then(
              () => true,
              () => false,
            )
          : await enginePing(port);
      if (ready) break;
      if (n % 30 === 29) log(`  still booting (${((performance.now() - t0) / 1000).toFixed(0)} s)`);
      await sleep(1000);
    }
    return new Vm({
      engine: o.engine,
      port,
      agent,
      runDir: o.runDir,
      bootSeconds: (performance.now() - t0) / 1000,
      proc,
      extraDisk: o.extraDisk,
    });
  }

  /** Orderly power-off through the guest agent; QEMU is killed if it does not end in time. */
  async stop(timeoutMs = 120_000): Promise<number> {
    const t0 = performance.now();
    if (this.#proc.exitCode !== null || this.#proc.signalCode !== null) return 0;
    const exited = once(this.#proc, 'exit');
    await this.agent.shutdown();
    const timer = setTimeout(() => this.#proc.kill('SIGKILL'), timeoutMs);
    await exited;
    clearTimeout(timer);
    return (performance.now() - t0) / 1000;
  }
}

/** GET /_ping on the forwarded port; false while the guest or its engine is not up yet. */
export async function enginePing(port: number): Promise<boolean> {
  try {
    const r = await fetch(`http://127.0.0.1:${port}/_ping`, { signal: AbortSignal.timeout(3000) });
    return r.ok && (await r.text()) === 'OK';
  } catch {
    return false;
  }
}

/**
 * Whether this machine's KVM really runs the guest: /dev/kvm may exist and still fail
 * (nested virtualisation that cannot run a stock Debian kernel: "failed to set MSR", or an
 * emulation failure on the first VEX instruction). Boots once with `-cpu host` and
 * throwaway writes, for at most `timeoutMs`; the answer is cached per machine kernel, QEMU
 * version and disk, so later runs do not pay for it.
 */
export async function probeKvm(
  image: HostImage,
  cacheDir: string,
  opts: { timeoutMs?: number; log?: (l: string) => void } = {},
): Promise<{ kvm: boolean; why: string; cached: boolean }> {
  try {
    accessSync('/dev/kvm', constants.R_OK | constants.W_OK);
  } catch {
    return { kvm: false, why: 'no usable /dev/kvm', cached: false };
  }
  const key = `${release()} | ${qemuVersion()} | ${image.hash}`;
  const file = join(cacheDir, 'kvm-probe.json');
  try {
    const c = JSON.parse(readFileSync(file, 'utf8')) as { key: string; kvm: boolean; why: string };
    if (c.key === key) return { kvm: c.kvm, why: c.why, cached: true };
  } catch {}
  let result: { kvm: boolean; why: string };
  try {
    const vm = await Vm.boot({
      image,
      engine: 'rootful',
      accel: 'kvm',
      runDir: join(cacheDir, 'run', 'kvm-probe'),
      snapshot: true,
      waitFor: 'agent',
      bootTimeoutMs: opts.timeoutMs ?? 90_000,
      ...(opts.log ? { log: opts.log } : {}),
    });
    result = { kvm: true, why: `booted in ${vm.bootSeconds.toFixed(0)} s` };
    await vm.stop(30_000);
  } catch (err) {
    const lines = (err as Error).message.split('\n');
    // QEMU's own complaint ("error: failed to set MSR 0x10a to 0x69") says most.
    const qemu = lines.find((l) => /error: |KVM internal error|emulation failure/.test(l));
    result = { kvm: false, why: `${lines[0]}${qemu ? `: ${qemu.replace(/^.*error: /, '')}` : ''}` };
  }
  writeFileSync(file, `${JSON.stringify({ key, ...result }, null, 2)}\n`);
  return { ...result, cached: false };
}
