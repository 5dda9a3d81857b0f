/**
 * Everything the bench starts registers how to stop it here, so an error or Ctrl-C still
 * ends servers, peer processes and sockets (our servers remove their lab hosts on SIGTERM).
 */
type Stop = () => Promise<unknown> | unknown;

const stops = new Map<number, { what: string; stop: Stop }>();
let nextId = 1;

/** Register a stop function; the returned function runs it now and unregisters it. */
export function track(what: string, stop: Stop): () => Promise<void> {
  const id = nextId++;
  stops.set(id, { what, stop });
  return async () => {
    if (!stops.delete(id)) return;
    await stop();
  };
}

/** Stop everything still registered, newest first. */
export async function stopAll(log: (s: string) => void): Promise<void> {
  const all = [...stops.entries()].reverse();
  stops.clear();
  for (const [, { what, stop }] of all) {
    try {
      await stop();
    } catch (err) {
      log(`cleanup: stopping ${what} failed: ${(err as Error).message}`);
    }
  }
}
