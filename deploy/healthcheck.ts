/**
 * The image's HEALTHCHECK: healthy when the server answers GET /api/v1/health and its
 * container engine is reachable (a server without an engine only plays recordings).
 */
const port = process.env.PORT || '4321';
try {
  const res = await fetch(`http://127.0.0.1:${port}/api/v1/health`, { signal: AbortSignal.timeout(4000) });
  const body = (await res.json()) as { labs?: { available?: boolean; help?: string } };
  if (!res.ok || body.labs?.available !== true) {
    console.error(`unhealthy: HTTP ${res.status}, labs unavailable: ${body.labs?.help ?? 'no answer'}`);
    process.exit(1);
  }
  console.log('healthy');
} catch (err) {
  console.error(`unhealthy: ${(err as Error).message}`);
  process.exit(1);
}
