/**
 * Local mode's runtime, chosen once at start (main.ts): lab hosts come from the engine as
 * always, but a terminal of target `host` is the learner's own shell on this machine
 * (node-pty), so `ps -ef` there shows the real dockerd, containerd and shims around the
 * lab host. The session layer does not know the difference.
 */
import type { TerminalDef } from '../../../../labs/schema.ts';
import type { Runtime, TerminalProcess } from '../runtime.ts';

export function localRuntime(
  engine: Runtime,
  hostShell: (size: { cols: number; rows: number }) => TerminalProcess,
): Runtime {
  return {
    info: () => engine.info(),
    createLabHost: (req) => engine.createLabHost(req),
    removeLabHost: (id) => engine.removeLabHost(id),
    renewLease: (id, until) => engine.renewLease(id, until),
    listLabHosts: () => engine.listLabHosts(),
    watchLabHosts: (on) => engine.watchLabHosts(on),
    openTerminal: async (hostId: string, terminal: TerminalDef, size: { cols: number; rows: number }) =>
      terminal.target === 'host' ? hostShell(size) : engine.openTerminal(hostId, terminal, size),
    exec: (hostId, cmd, opts) => engine.exec(hostId, cmd, opts),
  };
}
