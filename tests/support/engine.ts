/**
 * The Docker engine seen from the tests (Engine API through dockerode, never the CLI):
 * what a layer needs before it starts, our containers by label, and cleanup of one
 * instance's containers (never anyone else's: other servers share this engine).
 */
import Docker from 'dockerode';
import { labImageTag } from '../../labs/images.ts';
import { loadLabs } from '../../labs/load.ts';

export interface LabContainer {
  Id: string;
  Labels: Record<string, string>;
  /** running, exited, created, ... */
  State: string;
}

async function list(labels: string[]): Promise<LabContainer[]> {
  const filters = { label: ['containerlabs.managed=true', ...labels] };
  return (await new Docker().listContainers({ all: true, filters })) as LabContainer[];
}

/** Containers with our label for this server instance (every instance without one). */
export function labContainers(instance?: string): Promise<LabContainer[]> {
  return list(instance ? [`containerlabs.instance=${instance}`] : []);
}

/** Those of labContainers(instance) that run (a stopped one may wait for a reaper, see
 *  DockerRuntime's AutoRemove on engines with live-restore). */
export async function runningLabContainers(instance?: string): Promise<LabContainer[]> {
  return (await labContainers(instance)).filter((c) => c.State === 'running');
}

/** Containers of one session. */
export function sessionContainers(sessionId: string): Promise<LabContainer[]> {
  return list([`containerlabs.session=${sessionId}`]);
}

/** Force-removes every container of the given instance (test cleanup); how many there were. */
export async function removeInstanceContainers(instance: string): Promise<number> {
  const docker = new Docker();
  const found = await labContainers(instance);
  await Promise.allSettled(found.map((c) => docker.getContainer(c.Id).remove({ force: true })));
  return found.length;
}

/**
 * Throws, saying what to install or run, unless an engine answers and every lab's image
 * is built. A layer that needs them fails without them: nothing is skipped.
 */
export async function requireEngine(what = 'these tests'): Promise<void> {
  const docker = new Docker();
  try {
    await docker.ping();
  } catch (err) {
    throw new Error(
      `${what} need a Docker engine (${(err as Error).message}): start one (./run.sh setup installs docker.io) or set DOCKER_HOST`,
    );
  }
  for (const lab of await loadLabs()) {
    const tag = labImageTag(lab.id);
    try {
      await docker.getImage(tag).inspect();
    } catch {
      throw new Error(`${what} need the lab image ${tag}: run npm run images`);
    }
  }
}
