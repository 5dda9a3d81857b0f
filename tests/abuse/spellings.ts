/**
 * Other spellings of one request path: the ways a client can write a URL that a router may
 * decode or normalise into the same route, or not. A guard that reads raw URL text instead
 * of the route the router matched falls for one of them.
 */

const hex = (c: string) => c.charCodeAt(0).toString(16).padStart(2, '0');

/** Every variant of `path` (no query) with a note saying what was changed. */
export function spellings(path: string): { path: string; note: string }[] {
  const out = new Map<string, string>();
  const add = (p: string, note: string) => {
    if (p !== path && !out.has(p)) out.set(p, note);
  };
  // One character percent-escaped, upper- and lower-case hex; the slashes too (%2F).
  for (let i = 0; i < path.length; i++) {
    const c = path[i]!;
    const h = hex(c);
    add(
      `${path.slice(0, i)}%${h.toUpperCase()}${path.slice(i + 1)}`,
      `char ${i} '${c}' as %${h.toUpperCase()}`,
    );
    add(
      `${path.slice(0, i)}%${h.toLowerCase()}${path.slice(i + 1)}`,
      `char ${i} '${c}' as %${h.toLowerCase()}`,
    );
  }
  // Every character escaped at once (slashes kept), and every one including the slashes.
  add(
    path
      .split('/')
      .map((seg) => [...seg].map((c) => `%${hex(c).toUpperCase()}`).join(''))
      .join('/'),
    'every character escaped',
  );
  add([...path].map((c) => `%${hex(c)}`).join(''), 'every character escaped, slashes too');
  // Double-escaping: %2573 decodes once to %73.
  add(path.replace('sessions', '%2573essions'), 'double escape');
  const slashes = [...path].flatMap((c, i) => (c === '/' ? [i] : []));
  for (const i of slashes) {
    add(`${path.slice(0, i)}//${path.slice(i + 1)}`, `slash ${i} doubled`);
    add(`${path.slice(0, i)}/./${path.slice(i + 1)}`, `/./ at ${i}`);
    const rest = path.slice(i + 1);
    add(`${path.slice(0, i)}/x/../${rest}`, `/x/../ at ${i}`);
    add(`${path.slice(0, i)}/%2e/${rest}`, `/%2e/ at ${i}`);
    add(`${path.slice(0, i)}/x/%2e%2e/${rest}`, `/x/%2e%2e/ at ${i}`);
    // A ;parameter on the segment before the slash.
    if (i > 0) add(`${path.slice(0, i)};x=1${path.slice(i)}`, `;param before slash ${i}`);
  }
  add(`${path}/`, 'trailing slash');
  add(`${path}//`, 'two trailing slashes');
  add(`${path}/.`, 'trailing /.');
  add(`${path};x=1`, 'trailing ;param');
  add(`${path};`, 'trailing ;');
  add(`/${path}`, 'leading //');
  add(`${path}%00`, 'trailing NUL escape');
  add(`${path}%20`, 'trailing space escape');
  add(`${path}#frag`, 'fragment');
  add(path.toUpperCase(), 'upper case');
  add(path.replace('sessions', 'Sessions'), 'capitalised segment');
  add(path.replace('/api/', '/API/'), 'capital API');
  add(path.replace(/\//g, '\\'), 'backslashes');
  return [...out].map(([p, note]) => ({ path: p, note }));
}
