/**
 * Every command the server runs in a lab host through `docker exec`: the terminals'
 * `lab-shell <target>` (execSpec), `lab-lease` (the warm pool's lease renewal) and the fixed
 * scripts of the process and cgroup panels, the step checks (which also read mount tables)
 * and the admin API's resource figures.
 *
 * They are taken from the code that runs them, not copied: the panels' and the admin
 * API's readers are called once with a runtime that only records the command, so a script
 * edited there is allowed here without a second edit. A new caller of `Runtime.exec`
 * must be added below (the filter's unit test drives the real adapter through the filter
 * and fails on a command it does not know).
 */
import { TerminalDef } from '../../../labs/schema.ts';
import { readCgroup, readMounts, readProcesses } from '../inspect/snapshot.ts';
import { labHostResources } from '../ops/admin.ts';
import { execSpec, LEASE_COMMAND } from '../runtime/docker/lab-host-spec.ts';
import type { Runtime } from '../runtime/runtime.ts';

export async function knownCommands(): Promise<string[][]> {
  const commands: string[][] = [];
  const unused = () => Promise.reject(new Error('not recorded'));
  const recorder: Runtime = {
    info: () => Promise.resolve({ reachable: false }),
    createLabHost: unused,
    removeLabHost: unused,
    renewLease: unused,
    listLabHosts: unused,
    watchLabHosts: () => () => {},
    openTerminal: unused,
    exec: async (_hostId, cmd) => {
      commands.push([...cmd]);
      return { code: 0, stdout: '', stderr: '' };
    },
  };
  // Their output is empty here; only the command matters, so parse failures do not.
  await readProcesses(recorder, 'recorder').catch(() => {});
  await readCgroup(recorder, 'recorder').catch(() => {});
  await readMounts(recorder, 'recorder').catch(() => {});
  await labHostResources(recorder, 'recorder');
  // The warm pool's lease renewal (DockerRuntime.renewLease; its seconds go in Env).
  commands.push([...LEASE_COMMAND]);
  for (const target of TerminalDef.shape.target.options) {
    // The uid does not change the command.
    commands.push(execSpec({ name: 'terminal', title: 'terminal', target }, 2_000_000_000).Cmd);
  }
  return commands;
}
