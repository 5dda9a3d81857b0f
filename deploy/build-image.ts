/**
 * Builds the server image from what this machine has, with no image registry and no
 * network in the build (`npm run image`):
 *
 *   node deploy/build-image.ts [--tag containerlabs/server:local] [--force]
 *
 * 1. the lab base image `containerlabs/base:<tag>` (Debian bookworm, labs/images.ts) is the
 *    image's base; built first with `node labs/build-images.ts` when missing;
 * 2. the app is assembled from the built site and the installed packages
 *    (deploy/assemble.ts), beside this Node binary (the official build, as setup installs
 *    it: it runs on bookworm's glibc, and node-pty was built for its ABI);
 * 3. the repository's Dockerfile is built from that context with BUILD_IMAGE and BASE set
 *    to the base image, `--network none`.
 *
 * The image is tagged `containerlabs/server:<hash of every input>` and `--tag` (default
 * containerlabs/server:local, what compose.yaml runs). When an image with that hash
 * exists, nothing is built ("up to date"). Older hash tags are removed. Prints the
 * hash tag as the last line.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import Docker from 'dockerode';
import { BuildError, followStream, imageExists, printBuildOutput } from '../labs/build-images.ts';
import { baseImageTag, listTree } from '../labs/images.ts';
import { assemble, ROOT } from './assemble.ts';

export const IMAGE_REPO = 'containerlabs/server';
const CONTEXT = join(ROOT, '.cache', 'server-image');
/** Bump to rebuild every server image when the recipe changes. */
const RECIPE = 'containerlabs-server-v1';

function log(msg: string): void {
  process.stdout.write(`${msg}\n`);
}

/** The Node binary to put in the image: this one, if it can run there. */
function nodeBinary(engineArch: string): string {
  const [major = 0, minor = 0] = process.versions.node.split('.').map(Number);
  if (major < 22 || (major === 22 && minor < 18))
    throw new BuildError(`Node ${process.version} is too old for the image (>= 22.18)`);
  const vars = process.config.variables as { node_shared?: boolean };
  if (vars.node_shared) {
    throw new BuildError(
      `${process.execPath} needs a shared libnode (a distribution's build); run this with the official build ` +
        '(./run.sh setup installs one into .tools/), or build with a registry: docker compose build',
    );
  }
  const want = { x64: 'x86_64', arm64: 'aarch64' }[process.arch as 'x64' | 'arm64'];
  if (want !== engineArch) {
    throw new BuildError(`this Node is ${process.arch} but the engine runs ${engineArch}`);
  }
  return process.execPath;
}

/** Hash of every file of the context (paths, exec bits, contents) and the build args. */
function contextHash(dir: string, buildArgs: Record<string, string>, baseId: string): string {
  const h = createHash('sha256').update(`${RECIPE}\n${baseId}\n${JSON.stringify(buildArgs)}\n`);
  for (const f of listTree(dir)) h.update(`${f.path}\t${f.kind}\t${f.mode}\t${f.sha256}\n`);
  return h.digest('hex').slice(0, 12);
}

/** The build stage's image stays behind untagged after each build (classic builder). */
async function pruneBuildStages(docker: Docker): Promise<void> {
  const stages = await docker.listImages({
    filters: { dangling: ['true'], label: ['containerlabs.image=server-build'] },
  });
  for (const img of stages)
    await docker
      .getImage(img.Id)
      .remove()
      .catch(() => {});
}

async function pruneOld(docker: Docker, keep: string): Promise<void> {
  const images = await docker.listImages({ filters: { reference: [IMAGE_REPO] } });
  for (const img of images) {
    for (const t of img.RepoTags ?? []) {
      if (t === keep || !/^containerlabs\/server:[0-9a-f]{12}$/.test(t)) continue;
      try {
        await docker.getImage(t).remove();
        log(`  removed old ${t}`);
      } catch {
        // still used by a container: kept
      }
    }
  }
}

export async function buildServerImage(opts: {
  tag: string;
  force: boolean;
  verbose: boolean;
}): Promise<string> {
  const docker = new Docker();
  let arch: string;
  try {
    arch = String(((await docker.info()) as { Architecture?: string }).Architecture);
  } catch (err) {
    throw new BuildError(`cannot reach the Docker engine (${(err as Error).message}); is dockerd running?`);
  }
  const node = nodeBinary(arch);
  if (!existsSync(join(ROOT, 'node_modules'))) throw new BuildError('node_modules is missing: run npm ci');

  const base = baseImageTag();
  if (!(await imageExists(docker, base))) {
    log(`${base} is missing: building the lab images first (node labs/build-images.ts)`);
    const r = spawnSync(process.execPath, [join(ROOT, 'labs', 'build-images.ts')], { stdio: 'inherit' });
    if (r.status !== 0) throw new BuildError('building the lab base image failed');
  }
  const baseId = String((await docker.getImage(base).inspect()).Id);

  const t0 = performance.now();
  rmSync(CONTEXT, { recursive: true, force: true });
  mkdirSync(join(CONTEXT, '.prebuilt', 'node', 'bin'), { recursive: true });
  assemble(join(CONTEXT, '.prebuilt', 'app'));
  cpSync(node, join(CONTEXT, '.prebuilt', 'node', 'bin', 'node'));
  cpSync(join(ROOT, 'Dockerfile'), join(CONTEXT, 'Dockerfile'));
  const buildargs = { BUILD_IMAGE: base, BASE: base };
  const hashTag = `${IMAGE_REPO}:${contextHash(CONTEXT, buildargs, baseId)}`;
  log(`context assembled in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

  if (!opts.force && (await imageExists(docker, hashTag))) {
    log(`${hashTag}: up to date`);
  } else {
    const t1 = performance.now();
    log(`${hashTag}: building (base ${base}, --network none)`);
    const stream = await docker.buildImage(
      { context: CONTEXT, src: ['Dockerfile', '.prebuilt'] },
      {
        t: hashTag,
        buildargs,
        networkmode: 'none',
        labels: { 'containerlabs.image': 'server', 'containerlabs.base': base },
        rm: true,
        forcerm: true,
      },
    );
    await followStream(docker, stream, opts.verbose ? printBuildOutput : undefined);
    log(`${hashTag}: built in ${((performance.now() - t1) / 1000).toFixed(1)} s`);
  }
  if (opts.tag !== hashTag) {
    const [repo, version] = [
      opts.tag.slice(0, opts.tag.lastIndexOf(':')),
      opts.tag.slice(opts.tag.lastIndexOf(':') + 1),
    ];
    await docker.getImage(hashTag).tag({ repo, tag: version });
  }
  await pruneOld(docker, hashTag);
  await pruneBuildStages(docker);
  rmSync(CONTEXT, { recursive: true, force: true });
  return hashTag;
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: {
      tag: { type: 'string', default: `${IMAGE_REPO}:local` },
      force: { type: 'boolean', default: false },
      quiet: { type: 'boolean', short: 'q', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    log('usage: node deploy/build-image.ts [--tag containerlabs/server:local] [--force] [--quiet]');
    process.exit(0);
  }
  if (!/^[a-z0-9][a-z0-9._/-]*:[A-Za-z0-9_.-]{1,128}$/.test(values.tag)) {
    console.error(`build-image: --tag must look like name:tag, not ${values.tag}`);
    process.exit(2);
  }
  buildServerImage({ tag: values.tag, force: values.force, verbose: !values.quiet }).then(
    (tag) => {
      log(tag);
      process.exit(0);
    },
    (err: unknown) => {
      console.error(`build-image: ${err instanceof BuildError ? err.message : (err as Error).stack}`);
      process.exit(1);
    },
  );
}
