/**
 * The key per-client limits (session quota, creation rate) count under. An IPv4 address is
 * one client. An IPv6 client is its /64: a single home or host network gets a whole /64
 * (RFC 6177 recommends at least that per site, SLAAC needs it per link) and may pick any of
 * its 2^64 addresses, so keying by the full address would give one client 2^64 quotas.
 *
 *   clientKey('203.0.113.7')               → '203.0.113.7'
 *   clientKey('::ffff:203.0.113.7')        → '203.0.113.7'   (IPv4-mapped: an IPv4 client)
 *   clientKey('2001:DB8:1:2:a:b:c:d')      → '2001:db8:1:2::/64'
 *   clientKey('[fe80::1%eth0]:443')        → 'fe80::/64'
 *   clientKey('not an address')            → INVALID_CLIENT_KEY
 *
 * Pure, never throws. Whatever is not an address shares one key (INVALID_CLIENT_KEY), which
 * can never equal a real address's key: such clients share one quota rather than get one
 * each, since a malformed value is all an attacker would need for a fresh key.
 */

/** The one key for anything that is not an IP address (no address's key has this form). */
export const INVALID_CLIENT_KEY = 'invalid-address';

// A zone id is an interface name (at most 15 characters on Linux) or number.
const ZONE = /^[0-9A-Za-z._~-]{1,32}$/;
// The longest address text ("[" + 45 + "%" + zone + "]:65535" = 86): anything longer is
// refused before any splitting, so a huge header costs nothing.
const MAX_LENGTH = 100;
const HEX_GROUP = /^[0-9A-Fa-f]{1,4}$/;
const PORT = /^\d{1,5}$/;

export function clientKey(ip: string): string {
  if (typeof ip !== 'string' || ip.length > MAX_LENGTH) return INVALID_CLIENT_KEY;
  let s = ip;
  // "[v6]" or "[v6]:port" (URL and Host header spelling).
  const bracket = /^\[([^\]]*)\](?::\d{1,5})?$/.exec(s);
  if (bracket) {
    const v6 = ipv6Groups(bracket[1]!);
    return v6 ? keyOf(v6) : INVALID_CLIENT_KEY;
  }
  // "a.b.c.d:port" (some proxies put the port into X-Forwarded-For).
  const colon = s.indexOf(':');
  if (colon > 0 && s.indexOf(':', colon + 1) === -1 && PORT.test(s.slice(colon + 1))) s = s.slice(0, colon);
  const v4 = ipv4(s);
  if (v4) return v4.join('.');
  const v6 = ipv6Groups(s);
  return v6 ? keyOf(v6) : INVALID_CLIENT_KEY;
}

/** Dotted-quad IPv4, four decimal parts 0-255 without leading zeros (which inet_aton reads as octal). */
function ipv4(s: string): number[] | null {
  const parts = s.split('.');
  if (parts.length !== 4) return null;
  const out: number[] = [];
  for (const p of parts) {
    if (!/^(0|[1-9]\d{0,2})$/.test(p)) return null;
    const n = Number(p);
    if (n > 255) return null;
    out.push(n);
  }
  return out;
}

/** The eight 16-bit groups of an IPv6 address (RFC 4291 text forms, optional %zone), or null. */
function ipv6Groups(input: string): number[] | null {
  let s = input;
  const pct = s.indexOf('%');
  if (pct !== -1) {
    if (!ZONE.test(s.slice(pct + 1))) return null;
    s = s.slice(0, pct);
  }
  if (!s.includes(':')) return null;
  // A trailing dotted IPv4 stands for the last two groups.
  let tail: number[] = [];
  const lastColon = s.lastIndexOf(':');
  if (s.slice(lastColon + 1).includes('.')) {
    const v4 = ipv4(s.slice(lastColon + 1));
    if (!v4) return null;
    tail = [(v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!];
    // Keep the colon before it: "::1.2.3.4" becomes "::", "a::b:1.2.3.4" becomes "a::b:".
    s = s.slice(0, lastColon + 1);
    if (!s.endsWith('::')) s = s.slice(0, -1);
  }
  const halves = s.split('::');
  if (halves.length > 2) return null;
  const groups = (h: string): number[] | null => {
    if (h === '') return [];
    const out: number[] = [];
    for (const g of h.split(':')) {
      if (!HEX_GROUP.test(g)) return null;
      out.push(Number.parseInt(g, 16));
    }
    return out;
  };
  const head = groups(halves[0]!);
  if (!head) return null;
  if (halves.length === 1) {
    const all = [...head, ...tail];
    return all.length === 8 ? all : null;
  }
  const rest = groups(halves[1]!);
  if (!rest) return null;
  const known = head.length + rest.length + tail.length;
  // "::" stands for at least one group.
  if (known > 7) return null;
  return [...head, ...new Array<number>(8 - known).fill(0), ...rest, ...tail];
}

function keyOf(g: number[]): string {
  // ::ffff:a.b.c.d is an IPv4 client seen through a dual-stack socket.
  if (g.slice(0, 5).every((x) => x === 0) && g[5] === 0xffff) {
    return [g[6]! >> 8, g[6]! & 0xff, g[7]! >> 8, g[7]! & 0xff].join('.');
  }
  // RFC 5952 text of the prefix (lower case, no leading zeros, the longest run of zero
  // groups as "::"). Its last four groups are zero, so that run is always the trailing one,
  // with any zero groups just before it: 2001:db8:0:0:: is "2001:db8::".
  const head = g.slice(0, 4);
  while (head.length > 0 && head.at(-1) === 0) head.pop();
  return `${head.map((x) => x.toString(16)).join(':')}::/64`;
}
