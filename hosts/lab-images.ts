/**
 * The lab images in a test host's engine, without any registry: `docker save` from this
 * machine's engine (where `npm run images` built them) into one tar file, cached by the
 * tags it holds. The VM sees that file as a read-only second disk (/dev/vdb) and the
 * guest's own `docker load < /dev/vdb` reads it (run through the guest agent, against
 * guest port 2375, which is whichever engine the host runs); without that disk,
 * `POST /images/load` of the file through the forwarded API. Measured under TCG on a
 * loaded machine: 33 and 52 s from the disk, 74 and 62 s through the API (hosts/README.md).
 * A guest engine that already has every tag loads nothing; older containerlabs images
 * there are removed, so the overlay does not grow run after run.
 */

import { createHash } from 'node:crypto';
import {
  createReadStream,
  createWriteStream,
  existsSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
} from 'node:fs';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type Docker from 'dockerode';
import { followStream, imageExists } from '../labs/build-images.ts';
import { baseImageTag, labImageTag } from '../labs/images.ts';
import { loadLabs } from '../labs/load.ts';
import type { GuestAgent } from './guest-agent.ts';

/**
 * Every lab's image, and the base they are built FROM: with the base there, `npm run
 * images` against the guest's engine builds lab images as any laptop would (FROM a local
 * base, --network none), without debootstrap or root.
 */
export async function labImageTags(): Promise<string[]> {
  return [baseImageTag(), ...(await loadLabs()).map((l) => labImageTag(l.id))].sort();
}

/** One tar of every lab image (they share the base's layers, so it is about one image's size). */
export async function saveLabImages(
  docker: Docker,
  tags: string[],
  cacheDir: string,
): Promise<{ file: string; bytes: number; seconds: number }> {
  const name = `lab-images-${createHash('sha256').update(tags.join('\n')).digest('hex').slice(0, 12)}.tar`;
  const file = join(cacheDir, name);
  const t0 = performance.now();
  if (!existsSync(file)) {
    for (const tag of tags) {
      if (!(await imageExists(docker, tag))) {
        throw new Error(`${tag} is not built on this machine's engine: run npm run images first`);
      }
    }
    const stream = await new Promise<NodeJS.ReadableStream>((resolve, reject) => {
      docker.modem.dial(
        {
          path: '/images/get?',
          method: 'GET',
          options: { names: tags },
          isStream: true,
          statusCodes: { 200: true, 404: 'no such image', 500: 'server error' },
        },
        (err: unknown, s: unknown) => (err ? reject(err) : resolve(s as NodeJS.ReadableStream)),
      );
    });
    await pipeline(stream, createWriteStream(`${file}.partial`));
    renameSync(`${file}.partial`, file);
    for (const n of readdirSync(cacheDir)) {
      if (n.startsWith('lab-images-') && n !== name) rmSync(join(cacheDir, n), { force: true });
    }
  }
  return { file, bytes: statSync(file).size, seconds: (performance.now() - t0) / 1000 };
}

/**
 * Loads the tar into the guest's engine if any tag is missing: from the VM's second disk
 * through the guest agent when there is one, else through the API. Prunes older lab images.
 */
export async function ensureGuestLabImages(
  guest: Docker,
  tags: string[],
  tarFile: string,
  /** The guest agent, when the VM has the tar as its second disk (/dev/vdb). */
  agent?: GuestAgent,
): Promise<{ loaded: 'disk' | 'api' | false; seconds: number; removed: string[] }> {
  const t0 = performance.now();
  const missing: string[] = [];
  for (const tag of tags) if (!(await imageExists(guest, tag))) missing.push(tag);
  let loaded: 'disk' | 'api' | false = false;
  if (missing.length > 0 && agent) {
    // Guest port 2375 is the relay to whichever engine this boot runs, root or rootless.
    await agent.sh('DOCKER_HOST=tcp://127.0.0.1:2375 docker load -q < /dev/vdb', 20 * 60_000);
    loaded = 'disk';
  } else if (missing.length > 0) {
    const stream = (await guest.loadImage(createReadStream(tarFile), {
      quiet: true,
    })) as NodeJS.ReadableStream;
    await followStream(guest, stream);
    loaded = 'api';
  }
  for (const tag of missing) {
    if (!(await imageExists(guest, tag))) throw new Error(`${tag} is still missing after the load`);
  }
  const removed: string[] = [];
  for (const img of await guest.listImages()) {
    const refs = (img.RepoTags ?? []).filter((t) => t.startsWith('containerlabs/'));
    if (refs.length === 0 || refs.some((t) => tags.includes(t))) continue;
    try {
      await guest.getImage(img.Id).remove({ force: false });
      removed.push(...refs);
    } catch {
      // still used by a container: it goes next time
    }
  }
  return { loaded, seconds: (performance.now() - t0) / 1000, removed };
}
