/**
 * Helpers of the host suite (not tests). The suite runs through `npm run test:hosts`
 * (hosts/run.ts), which boots each test host and sets:
 *   DOCKER_HOST          tcp://127.0.0.1:<port>, the guest's engine (forwarded by QEMU)
 *   CL_TEST_HOST         rootful | rootless: which host this is meant to be
 *   CL_TEST_SLOWNESS     how much every timeout is stretched (tests/support/slowness.ts)
 *   CL_TEST_GUEST_AGENT  the guest agent's socket: root in the guest, for what no API
 *                        offers (loading or unloading an AppArmor profile)
 * Everything else is the shared helpers of tests/support and tests/abuse.
 */
import Docker from 'dockerode';
import { GuestAgent } from '../../hosts/guest-agent.ts';

export type HostKind = 'rootful' | 'rootless';

function required(name: string): string {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run the host suite with npm run test:hosts (hosts/run.ts)`);
  return v;
}

/** Which test host this is; refuses to run against anything but a test host's engine. */
export function hostKind(): HostKind {
  const kind = required('CL_TEST_HOST');
  if (kind !== 'rootful' && kind !== 'rootless') throw new Error(`CL_TEST_HOST=${kind}: rootful or rootless`);
  // The suite unloads AppArmor profiles and fills the engine: never the shared engine.
  if (!/^tcp:\/\/127\.0\.0\.1:\d+$/.test(required('DOCKER_HOST'))) {
    throw new Error(
      `DOCKER_HOST=${process.env.DOCKER_HOST}: the host suite runs only against a test host's forwarded engine`,
    );
  }
  return kind;
}

export function guestAgent(): GuestAgent {
  return new GuestAgent(required('CL_TEST_GUEST_AGENT'));
}

export interface EngineFacts {
  version: string;
  apiVersion: string;
  cgroupVersion: string;
  cgroupDriver: string;
  securityOptions: string[];
  apparmor: boolean;
  rootless: boolean;
}

/** What the engine says of itself (dockerode follows DOCKER_HOST). */
export async function engineFacts(): Promise<EngineFacts> {
  const docker = new Docker();
  const [v, i] = await Promise.all([docker.version(), docker.info() as Promise<Record<string, unknown>>]);
  const securityOptions = (i.SecurityOptions as string[] | undefined) ?? [];
  return {
    version: String(v.Version),
    apiVersion: String(v.ApiVersion),
    cgroupVersion: String(i.CgroupVersion),
    cgroupDriver: String(i.CgroupDriver),
    securityOptions,
    apparmor: securityOptions.some((o) => o.includes('name=apparmor')),
    rootless: securityOptions.some((o) => o.includes('name=rootless')),
  };
}
