/**
 * Is there a lab server, and can it run labs? Asked once per page by the tiny boot script,
 * so it must stay small (no xterm, no API client).
 */
export type LabAvailability =
  /** A server with a reachable container engine: offer live labs. */
  | { kind: 'live' }
  /** A server whose container engine is down: explain, offer the recording. */
  | { kind: 'engine-down'; detail: string | undefined }
  /** No server at all (static hosting): offer the recording. */
  | { kind: 'no-server' };

export async function checkHealth(timeoutMs = 5000): Promise<LabAvailability> {
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), timeoutMs);
  try {
    const res = await fetch('/api/v1/health', {
      cache: 'no-store',
      signal: ctl.signal,
      headers: { accept: 'application/json' },
    });
    if (!(res.headers.get('content-type') ?? '').includes('application/json')) {
      // A static host's 404 page: drop it unread, or the request stays open.
      void res.body?.cancel().catch(() => {});
      return { kind: 'no-server' };
    }
    const body = (await res.json()) as {
      status?: string;
      /** `help` says why labs cannot start (no engine, shutting down) and what to do. */
      labs?: { available?: boolean; help?: string };
    };
    if (body.labs?.available === true && res.ok) return { kind: 'live' };
    if (body.labs) return { kind: 'engine-down', detail: body.labs.help };
    return { kind: 'no-server' };
  } catch {
    return { kind: 'no-server' };
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Puts a server message into `el` as text, with `backticked` parts as <code> (the server
 * writes commands that way). Never parses HTML.
 */
export function setMessage(el: Element, text: string): void {
  el.replaceChildren(
    ...text.split('`').map((part, i) => {
      if (i % 2 === 0) return document.createTextNode(part);
      const code = document.createElement('code');
      code.textContent = part;
      return code;
    }),
  );
}
