/**
 * Builds the lab images that are missing; skips the ones that are up to date.
 *
 *   node labs/build-images.ts [--lab <id>]... [--force] [--base-method auto|registry|debootstrap] [--prune]
 *   npm run images
 *
 * 1. The base image `containerlabs/base:<hash>` (labs/_base/): Debian bookworm with
 *    labs/_base/packages.txt. Two ways to make it, chosen automatically:
 *    - registry:    `FROM debian:bookworm-slim` + apt-get (labs/_base/Dockerfile), when that
 *                   image is already here or `docker pull` succeeds within a few seconds;
 *    - debootstrap: `debootstrap --variant=minbase` from the machine's own Debian mirror
 *                   and `docker import` (needs root on Debian; about 1-2 minutes), for
 *                   machines that reach no image registry.
 * 2. One image per lab, `containerlabs/lab-<id>:<hash>` (labs/_common/Dockerfile), FROM
 *    the base, built with --network none from an assembled context.
 *
 * --prune removes older tags of the base and of the labs asked for (an image that a
 * container still uses is kept). Tags are hashes of the inputs (labs/images.ts), so a second run only asks the engine
 * whether each tag exists, and prints "up to date".
 */
import { spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import Docker from 'dockerode';
import {
  baseImageTag,
  basePackages,
  DEBIAN_SUITE,
  LABS_DIR,
  type LabImagePlan,
  labImagePlan,
} from './images.ts';
import { loadLabs } from './load.ts';

const REGISTRY_BASE = `debian:${DEBIAN_SUITE}-slim`;
/** How long a registry gets to start answering a pull before we fall back to debootstrap. */
const PULL_FIRST_ANSWER_MS = 15_000;
const PULL_TOTAL_MS = 10 * 60_000;

type BaseMethod = 'auto' | 'registry' | 'debootstrap';

export class BuildError extends Error {}

function log(msg: string): void {
  process.stdout.write(`${msg}\n`);
}

function seconds(since: number): string {
  return `${((performance.now() - since) / 1000).toFixed(1)}s`;
}

export async function imageExists(docker: Docker, tag: string): Promise<boolean> {
  try {
    await docker.getImage(tag).inspect();
    return true;
  } catch (err) {
    if ((err as { statusCode?: number }).statusCode === 404) return false;
    throw err;
  }
}

/**
 * Follows a Docker build, pull or import stream (JSON lines) to its end with docker-modem's
 * followProgress; rejects with the first error event, which followProgress passes on as an
 * event like any other, and with the stream's own error.
 */
export function followStream(
  docker: Docker,
  stream: NodeJS.ReadableStream,
  onEvent: (ev: Record<string, unknown>) => void = () => {},
): Promise<void> {
  return new Promise((resolve, reject) => {
    let failed: Error | undefined;
    docker.modem.followProgress(
      stream,
      (err) => {
        if (err) reject(err);
        else if (failed) reject(failed);
        else resolve();
      },
      (ev: Record<string, unknown>) => {
        if (ev.error || ev.errorDetail) {
          failed ??= new BuildError(String(ev.error ?? JSON.stringify(ev.errorDetail)));
        }
        onEvent(ev);
      },
    );
  });
}

/** Build output lines ("Step 3/9 : RUN ...") indented under the image being built. */
export function printBuildOutput(ev: Record<string, unknown>): void {
  if (typeof ev.stream === 'string') {
    for (const line of ev.stream.split('\n')) if (line.trim()) log(`    ${line.trimEnd()}`);
  }
}

/** Try to get debian:bookworm-slim from a registry; never hang on an unreachable one. */
async function tryPull(docker: Docker): Promise<boolean> {
  log(`  trying docker pull ${REGISTRY_BASE} ...`);
  const abort = new AbortController();
  let answered = false;
  const firstAnswer = setTimeout(() => {
    if (!answered) abort.abort();
  }, PULL_FIRST_ANSWER_MS);
  const total = setTimeout(() => abort.abort(), PULL_TOTAL_MS);
  try {
    const stream = (await docker.pull(REGISTRY_BASE, { abortSignal: abort.signal })) as NodeJS.ReadableStream;
    await followStream(docker, stream, (ev) => {
      // "Pulling from library/debian" means the registry answered; layers may take longer.
      if (typeof ev.status === 'string' && /Pulling from|Digest:|Status:/.test(ev.status)) answered = true;
    });
    return await imageExists(docker, REGISTRY_BASE);
  } catch (err) {
    log(`  no registry: ${(err as Error).message.split('\n')[0]}`);
    return false;
  } finally {
    clearTimeout(firstAnswer);
    clearTimeout(total);
  }
}

/** The Debian mirror apt uses on this machine (deb822 .sources or one-line .list). */
export function debianMirror(aptDir = '/etc/apt'): string {
  const files: string[] = [];
  if (existsSync(join(aptDir, 'sources.list'))) files.push(join(aptDir, 'sources.list'));
  const d = join(aptDir, 'sources.list.d');
  if (existsSync(d)) for (const f of readdirSync(d).sort()) files.push(join(d, f));
  for (const file of files) {
    const text = readFileSync(file, 'utf8');
    if (file.endsWith('.sources')) {
      for (const stanza of text.split(/\n\s*\n/)) {
        const field = (name: string): string[] =>
          (new RegExp(`^${name}:\\s*(.*)$`, 'mi').exec(stanza)?.[1] ?? '').split(/\s+/).filter(Boolean);
        if (field('Enabled')[0] === 'no') continue;
        if (!field('Types').includes('deb')) continue;
        if (!field('Suites').includes(DEBIAN_SUITE)) continue;
        const uri = field('URIs')[0];
        if (uri) return uri;
      }
    } else if (file.endsWith('.list')) {
      for (const raw of text.split('\n')) {
        const line = raw
          .replace(/#.*/, '')
          .replace(/\[[^\]]*\]/, '')
          .trim();
        const [type, uri, suite] = line.split(/\s+/);
        if (type === 'deb' && uri && suite === DEBIAN_SUITE) return uri;
      }
    }
  }
  return 'http://deb.debian.org/debian';
}

function run(cmd: string, args: string[], logFile?: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const tail: string[] = [];
    const keep = (chunk: Buffer) => {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (!line) continue;
        tail.push(line);
        if (tail.length > 40) tail.shift();
        if (!logFile && line.trim()) log(`    ${line}`);
      }
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolve();
      else reject(new BuildError(`${cmd} exited with ${code}:\n${tail.join('\n')}`));
    });
  });
}

async function buildBaseFromRegistry(docker: Docker, tag: string): Promise<void> {
  // The registry path needs network inside the build (apt-get); lab images do not.
  const stream = await docker.buildImage(
    { context: join(LABS_DIR, '_base'), src: ['Dockerfile', 'packages.txt', 'trim.sh'] },
    {
      t: tag,
      buildargs: { DEBIAN_IMAGE: REGISTRY_BASE },
      labels: { 'containerlabs.image': 'base', 'containerlabs.base-method': 'registry' },
      rm: true,
      forcerm: true,
    },
  );
  await followStream(docker, stream, printBuildOutput);
}

async function buildBaseWithDebootstrap(docker: Docker, tag: string): Promise<void> {
  if (process.getuid?.() !== 0) {
    throw new BuildError(
      `no image registry answered and debootstrap needs root: run this as root on Debian, or make ${REGISTRY_BASE} available (docker pull / docker load)`,
    );
  }
  if (!existsSync('/usr/sbin/debootstrap')) {
    throw new BuildError(
      'no image registry answered and debootstrap is not installed (apt-get install debootstrap)',
    );
  }
  const mirror = debianMirror();
  const work = mkdtempSync(join('/var/tmp', 'containerlabs-base-'));
  const rootfs = join(work, 'rootfs');
  try {
    const pkgs = basePackages().join(',');
    log(`  debootstrap --variant=minbase --include=${pkgs} ${DEBIAN_SUITE} ${rootfs} ${mirror}`);
    await run(
      'debootstrap',
      ['--variant=minbase', `--include=${pkgs}`, DEBIAN_SUITE, rootfs, mirror],
      join(work, 'log'),
    );
    await run('sh', [join(LABS_DIR, '_base', 'trim.sh'), rootfs]);
    log(`  docker import ${rootfs} ${tag}`);
    const tar = spawn('tar', ['--numeric-owner', '-C', rootfs, '-cf', '-', '.'], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const tarDone = new Promise<void>((resolve, reject) => {
      tar.on('error', reject);
      tar.on('close', (code) => (code === 0 ? resolve() : reject(new BuildError(`tar exited with ${code}`))));
    });
    const [repo, version] = tag.split(':') as [string, string];
    const stream = (await docker.importImage(tar.stdout, {
      repo,
      tag: version,
      changes: [
        'LABEL containerlabs.image=base containerlabs.base-method=debootstrap',
        'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
        'CMD ["/bin/bash"]',
      ],
    })) as NodeJS.ReadableStream;
    await Promise.all([followStream(docker, stream), tarDone]);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

async function ensureBase(docker: Docker, force: boolean, method: BaseMethod): Promise<string> {
  const tag = baseImageTag();
  if (!force && (await imageExists(docker, tag))) {
    log(`${tag}: up to date`);
    return tag;
  }
  const t0 = performance.now();
  log(`${tag}: building`);
  let useRegistry: boolean;
  if (method === 'registry') useRegistry = true;
  else if (method === 'debootstrap') useRegistry = false;
  else useRegistry = (await imageExists(docker, REGISTRY_BASE)) || (await tryPull(docker));
  if (useRegistry) await buildBaseFromRegistry(docker, tag);
  else await buildBaseWithDebootstrap(docker, tag);
  log(`${tag}: built in ${seconds(t0)}`);
  return tag;
}

async function buildLab(docker: Docker, plan: LabImagePlan): Promise<void> {
  const ctx = mkdtempSync(join(tmpdir(), `containerlabs-lab-${plan.labId}-`));
  try {
    cpSync(plan.dockerfile, join(ctx, 'Dockerfile'));
    cpSync(plan.setupScript, join(ctx, 'setup.sh'));
    cpSync(plan.commonDir, join(ctx, 'common'), { recursive: true });
    if (existsSync(plan.labImageDir)) cpSync(plan.labImageDir, join(ctx, 'lab'), { recursive: true });
    else mkdirSync(join(ctx, 'lab'));
    const stream = await docker.buildImage(
      { context: ctx, src: ['Dockerfile', 'setup.sh', 'common', 'lab'] },
      {
        t: plan.tag,
        buildargs: { BASE_IMAGE: plan.baseTag },
        networkmode: 'none',
        labels: {
          'containerlabs.image': 'lab',
          'containerlabs.lab': plan.labId,
          'containerlabs.inputs-hash': plan.hash,
          'containerlabs.base': plan.baseTag,
        },
        rm: true,
        forcerm: true,
      },
    );
    await followStream(docker, stream, printBuildOutput);
  } finally {
    rmSync(ctx, { recursive: true, force: true });
  }
}

/** Remove older tags of one image repository (images still used by a container are kept). */
async function pruneOld(docker: Docker, current: string): Promise<void> {
  const repo = current.slice(0, current.lastIndexOf(':'));
  const images = await docker.listImages({ filters: { reference: [repo] } });
  for (const img of images) {
    for (const t of img.RepoTags ?? []) {
      if (t === current || !t.startsWith(`${repo}:`)) continue;
      try {
        await docker.getImage(t).remove();
        log(`  removed old ${t}`);
      } catch (err) {
        log(`  kept old ${t}: ${(err as Error).message.split('\n')[0]}`);
      }
    }
  }
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      lab: { type: 'string', multiple: true },
      force: { type: 'boolean', default: false },
      prune: { type: 'boolean', default: false },
      'base-method': { type: 'string', default: 'auto' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    log(
      'usage: node labs/build-images.ts [--lab <id>]... [--force] [--prune] [--base-method auto|registry|debootstrap]',
    );
    return 0;
  }
  const method = values['base-method'] as BaseMethod;
  if (!['auto', 'registry', 'debootstrap'].includes(method)) {
    throw new BuildError(`--base-method must be auto, registry or debootstrap, not ${method}`);
  }
  const labs = await loadLabs(LABS_DIR);
  const known = labs.map((l) => l.id);
  const wanted = values.lab ?? known;
  for (const id of wanted) {
    if (!known.includes(id)) throw new BuildError(`unknown lab "${id}" (labs: ${known.join(', ')})`);
  }

  const docker = new Docker();
  try {
    await docker.ping();
  } catch (err) {
    throw new BuildError(`cannot reach the Docker engine (${(err as Error).message}); is dockerd running?`);
  }

  const t0 = performance.now();
  const plans = wanted.map((id) => labImagePlan(id));
  const todo: LabImagePlan[] = [];
  for (const plan of plans) {
    if (!values.force && (await imageExists(docker, plan.tag))) log(`${plan.tag}: up to date`);
    else todo.push(plan);
  }
  if (todo.length === 0) {
    const baseTag = baseImageTag();
    const have = await imageExists(docker, baseTag);
    log(`${baseTag}: ${have ? 'up to date' : 'absent (not needed: every lab image is up to date)'}`);
  } else {
    // --force rebuilds the labs asked for; the base only when it is missing (rebuilding
    // it means debootstrap or a download) unless --force is given with no lab selection.
    await ensureBase(docker, values.force && values.lab === undefined, method);
    for (const plan of todo) {
      const t1 = performance.now();
      log(`${plan.tag}: building`);
      await buildLab(docker, plan);
      log(`${plan.tag}: built in ${seconds(t1)}`);
    }
  }
  if (values.prune) {
    for (const plan of plans) await pruneOld(docker, plan.tag);
    await pruneOld(docker, baseImageTag());
  }
  log(`done in ${seconds(t0)}`);
  return 0;
}

if (import.meta.main) {
  main().then(
    (code) => process.exit(code),
    (err: unknown) => {
      console.error(`build-images: ${err instanceof BuildError ? err.message : (err as Error).stack}`);
      process.exit(1);
    },
  );
}
