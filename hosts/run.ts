/**
 * `npm run test:hosts`: the host suite (tests/hosts/) against each test host, one VM at
 * a time.
 *
 *   node hosts/run.ts [--host rootful|rootless]... [--test tests/hosts/x.test.ts]... [--keep]
 *
 * For each host: build or reuse the disk (hosts/build.ts), boot it (hosts/vm.ts; KVM if
 * it really works here, else TCG), wait for its engine, print what the engine is, load the
 * lab images when missing (hosts/lab-images.ts), measure how slow a container start is,
 * run the suite with DOCKER_HOST pointing at the guest's engine and every timeout scaled
 * by that slowness (CL_TEST_SLOWNESS, tests/support/slowness.ts), then power the VM off.
 * `--keep` leaves the last VM running and prints its DOCKER_HOST (for a closer look).
 * Prints the figures (build, boot, load, suite per host); exits 1 if anything failed.
 */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import Docker from 'dockerode';
import { defaultCacheDir, ensureHostImage } from './build.ts';
import { ensureGuestLabImages, labImageTags, saveLabImages } from './lab-images.ts';
import { type Accel, type EngineKind, probeKvm, Vm } from './vm.ts';

const ROOT = join(import.meta.dirname, '..');
const ALL_HOSTS: EngineKind[] = ['rootful', 'rootless'];
/**
 * A container's create + start + exit on an engine of the CI machine's kind (2 cores,
 * Docker 20.10: 0.17-0.25 s). The measured time on a test host divided by this is the
 * slowness every test timeout is multiplied by.
 */
const REFERENCE_START_MS = 250;
const MAX_SLOWNESS = 60;

const { values } = parseArgs({
  options: {
    host: { type: 'string', multiple: true },
    test: { type: 'string', multiple: true },
    keep: { type: 'boolean', default: false },
  },
});
const hosts = (values.host ?? ALL_HOSTS) as EngineKind[];
for (const h of hosts) {
  if (!ALL_HOSTS.includes(h)) throw new Error(`unknown host ${h} (rootful or rootless)`);
}
/**
 * The host suite: its own files, and the abuse suite's isolation checks (capabilities,
 * seccomp, network, files, devices, the syscalls refused), which must hold on every host.
 */
const testFiles = values.test ?? [
  ...readdirSync(join(ROOT, 'tests', 'hosts'))
    .filter((f) => f.endsWith('.test.ts'))
    .sort()
    .map((f) => join('tests', 'hosts', f)),
  join('tests', 'abuse', 'isolation.test.ts'),
  // Lesson 5's cgroup v2 tab: its blocks are skipped on the CI machine's cgroup v1 host, and
  // run here (LESSONS below), each against what the lesson says it prints.
  join('tests', 'integration', 'lessons.test.ts'),
];

const log = (l: string) => console.log(l);
const secs = (s: number) => `${s.toFixed(0)} s`;

interface HostEngine {
  version: string;
  api: string;
  cgroup: string;
  driver: string;
  security: string;
  kernel: string;
  rootless: boolean;
  apparmor: boolean;
}

async function describeEngine(docker: Docker): Promise<HostEngine> {
  const [v, i] = await Promise.all([docker.version(), docker.info() as Promise<Record<string, unknown>>]);
  const opts = (i.SecurityOptions as string[] | undefined) ?? [];
  return {
    version: String(v.Version),
    api: String(v.ApiVersion),
    cgroup: `v${i.CgroupVersion ?? '1'}`,
    driver: String(i.CgroupDriver),
    security: opts.map((o) => o.replace(/^name=/, '').replace(/,profile=/, ' profile ')).join(', '),
    kernel: String(i.KernelVersion),
    rootless: opts.some((o) => o.includes('name=rootless')),
    apparmor: opts.some((o) => o.includes('name=apparmor')),
  };
}

/** create + start + wait of a container that does nothing: how slow this engine is. */
async function measureStart(docker: Docker, image: string): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < 3; i++) {
    const t0 = performance.now();
    const c = await docker.createContainer({
      Image: image,
      Entrypoint: ['/bin/true'],
      Labels: { 'containerlabs.hosts-probe': 'true' },
      HostConfig: { NetworkMode: 'none', AutoRemove: false },
    });
    await c.start();
    await c.wait();
    times.push(performance.now() - t0);
    await c.remove({ force: true });
  }
  return times.sort((a, b) => a - b)[1]!;
}

function runSuite(env: Record<string, string>): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(
      process.execPath,
      ['--test', '--test-concurrency=1', '--test-reporter=spec', ...testFiles],
      {
        cwd: ROOT,
        stdio: 'inherit',
        env: { ...process.env, FORCE_COLOR: '0', LESSONS: '05-cgroups', ...env },
      },
    );
    child.on('exit', (code) => resolve(code ?? 1));
  });
}

interface HostResult {
  host: EngineKind;
  ok: boolean;
  boot?: number;
  load?: number;
  slowness?: number;
  startMs?: number;
  suite?: number;
  stop?: number;
  engine?: HostEngine;
  error?: string;
}

const t0 = performance.now();
const cacheDir = process.env.CL_HOSTS_CACHE || defaultCacheDir();
log(`hosts: ${hosts.join(', ')}; tests: ${testFiles.join(' ')}`);
const image = await ensureHostImage({ cacheDir, log: (l) => log(`  ${l}`) });
log(
  `hosts: disk ${image.hash}` +
    (image.builtSeconds.rootfs || image.builtSeconds.disk
      ? ` built (rootfs ${secs(image.builtSeconds.rootfs)}, disk ${secs(image.builtSeconds.disk)})`
      : ' (cached)'),
);
const probe = await probeKvm(image, cacheDir, { log });
const accel: Accel = probe.kvm ? 'kvm' : 'tcg';
log(`hosts: ${accel.toUpperCase()} (KVM probe${probe.cached ? ', cached' : ''}: ${probe.why})`);

const tags = await labImageTags();
const saved = await saveLabImages(new Docker(), tags, cacheDir);
log(
  `hosts: lab images ${(saved.bytes / 1e6).toFixed(0)} MB in ${saved.file} (${saved.seconds.toFixed(1)} s)`,
);
const site = existsSync(join(ROOT, 'dist', 'index.html')) ? join(ROOT, 'dist') : undefined;

const results: HostResult[] = [];
for (const [n, host] of hosts.entries()) {
  const r: HostResult = { host, ok: false };
  results.push(r);
  log(`\n=== host ${host}: booting (${accel})`);
  let vm: Vm | undefined;
  try {
    vm = await Vm.boot({
      image,
      engine: host,
      accel,
      runDir: join(cacheDir, 'run', host),
      extraDisk: saved.file,
      log,
    });
    r.boot = vm.bootSeconds;
    const docker = new Docker({ host: '127.0.0.1', port: vm.port });
    const engine = await describeEngine(docker);
    r.engine = engine;
    log(`host ${host}: booted in ${secs(vm.bootSeconds)}; engine at ${vm.dockerHost}`);
    log(
      `host ${host}: docker ${engine.version}, API ${engine.api}, cgroup ${engine.cgroup}, driver ${engine.driver}`,
    );
    log(`host ${host}: security options: ${engine.security}; kernel ${engine.kernel}`);
    const loaded = await ensureGuestLabImages(docker, tags, saved.file, vm.agent);
    r.load = loaded.loaded ? loaded.seconds : 0;
    log(
      `host ${host}: lab images ${loaded.loaded ? `loaded from the ${loaded.loaded} in ${loaded.seconds.toFixed(1)} s` : 'already there'}` +
        (loaded.removed.length ? `; removed older ${loaded.removed.join(' ')}` : ''),
    );
    const startMs = await measureStart(docker, tags[0]!);
    const slowness = process.env.CL_TEST_SLOWNESS
      ? Number(process.env.CL_TEST_SLOWNESS)
      : Math.min(MAX_SLOWNESS, Math.max(1, Math.ceil(startMs / REFERENCE_START_MS)));
    r.startMs = startMs;
    r.slowness = slowness;
    log(`host ${host}: a container start takes ${startMs.toFixed(0)} ms: CL_TEST_SLOWNESS=${slowness}`);
    const s0 = performance.now();
    const code = await runSuite({
      DOCKER_HOST: vm.dockerHost,
      CL_TEST_SLOWNESS: String(slowness),
      // The servers the suite starts wait as much longer for quick engine calls.
      CL_ENGINE_TIMEOUT: `${5 * slowness}s`,
      CL_TEST_HOST: host,
      CL_TEST_GUEST_AGENT: join(vm.runDir, 'qga.sock'),
      ...(site && !process.env.LAB_TEST_SITE ? { LAB_TEST_SITE: site } : {}),
    });
    r.suite = (performance.now() - s0) / 1000;
    r.ok = code === 0;
  } catch (err) {
    r.error = (err as Error).message;
    log(`host ${host}: ${r.error}`);
  } finally {
    if (vm && values.keep && n === hosts.length - 1) {
      log(
        `host ${host}: kept running: DOCKER_HOST=${vm.dockerHost}, guest agent ${join(vm.runDir, 'qga.sock')}`,
      );
    } else if (vm) {
      r.stop = await vm.stop();
    }
  }
}

log('\n=== hosts: figures');
for (const r of results) {
  const e = r.engine;
  log(
    `${r.ok ? 'ok  ' : 'FAIL'} ${r.host.padEnd(9)}` +
      (e ? ` docker ${e.version} (API ${e.api}), cgroup ${e.cgroup} ${e.driver}, ${e.security}` : '') +
      `\n       boot ${r.boot ? secs(r.boot) : '-'}, image load ${r.load !== undefined ? `${r.load.toFixed(1)} s` : '-'}` +
      `, container start ${r.startMs ? `${r.startMs.toFixed(0)} ms` : '-'} (slowness ${r.slowness ?? '-'})` +
      `, suite ${r.suite ? secs(r.suite) : '-'}, power-off ${r.stop ? secs(r.stop) : '-'}` +
      (r.error ? `\n       ${r.error.split('\n')[0]}` : ''),
  );
}
log(`hosts: ${accel.toUpperCase()}, total ${secs((performance.now() - t0) / 1000)}`);
process.exit(results.every((r) => r.ok) ? 0 : 1);
