/**
 * The networking snapshot: every network namespace of a lab host with its links (bridge
 * masters, packet counters), IPv4 addresses and ICMP echo counters, as printed by
 * vm/guest/vm-network. Only the in-browser VM can produce it (a lab host on the server may
 * not make network namespaces), but its parser and the checks that read it live here
 * beside the other snapshots, so one implementation judges (checks.ts).
 */

export interface NetLink {
  name: string;
  /** `veth`, `bridge`, `loopback`…: iproute2's linkinfo kind, or link_type for loopback. */
  kind: string;
  up: boolean;
  /** The bridge this link is a port of. */
  master?: string;
  rxPackets: number;
  txPackets: number;
}

export interface NetNamespace {
  inode: string;
  /** `host`, `netns:<name>` (ip netns) or `pid:<n>` (a process's). */
  label: string;
  links: NetLink[];
  /** `address/prefix` per link name (IPv4). */
  addresses: Record<string, string[]>;
  icmp: { inEchos: number; inEchoReps: number; outEchos: number; outEchoReps: number };
}

export interface NetworkSnapshot {
  namespaces: NetNamespace[];
}

type JsonLink = {
  ifname?: string;
  flags?: string[];
  operstate?: string;
  link_type?: string;
  master?: string;
  linkinfo?: { info_kind?: string };
  stats64?: { rx?: { packets?: number }; tx?: { packets?: number } };
  stats?: { rx?: { packets?: number }; tx?: { packets?: number } };
};
type JsonAddr = { ifname?: string; addr_info?: { family?: string; local?: string; prefixlen?: number }[] };

function json<T>(text: string): T[] {
  try {
    const v = JSON.parse(text) as unknown;
    return Array.isArray(v) ? (v as T[]) : [];
  } catch {
    return [];
  }
}

export function parseNetwork(text: string): NetworkSnapshot {
  const namespaces: NetNamespace[] = [];
  let cur: NetNamespace | undefined;
  let icmpNames: string[] | undefined;
  for (const line of text.split('\n')) {
    const sp = line.indexOf(' ');
    const tag = sp < 0 ? line : line.slice(0, sp);
    const rest = sp < 0 ? '' : line.slice(sp + 1);
    if (tag === 'NETNS') {
      const [inode = '', label = ''] = rest.split(' ');
      cur = {
        inode,
        label,
        links: [],
        addresses: {},
        icmp: { inEchos: 0, inEchoReps: 0, outEchos: 0, outEchoReps: 0 },
      };
      namespaces.push(cur);
      icmpNames = undefined;
    } else if (!cur) {
    } else if (tag === 'LINKS') {
      cur.links = json<JsonLink>(rest).map((l) => {
        const st = l.stats64 ?? l.stats;
        return {
          name: l.ifname ?? '?',
          kind: l.linkinfo?.info_kind ?? l.link_type ?? '?',
          up: (l.flags ?? []).includes('UP'),
          ...(l.master ? { master: l.master } : {}),
          rxPackets: st?.rx?.packets ?? 0,
          txPackets: st?.tx?.packets ?? 0,
        };
      });
    } else if (tag === 'ADDRS') {
      for (const a of json<JsonAddr>(rest)) {
        const v4 = (a.addr_info ?? []).filter((i) => i.family === 'inet' && i.local);
        if (a.ifname && v4.length) cur.addresses[a.ifname] = v4.map((i) => `${i.local}/${i.prefixlen ?? 32}`);
      }
    } else if (tag === 'SNMP') {
      // Two lines: the counter names, then their values.
      const fields = rest
        .replace(/^Icmp:\s*/, '')
        .trim()
        .split(/\s+/);
      if (!icmpNames) {
        icmpNames = fields;
        continue;
      }
      const get = (name: string) => {
        const v = Number(fields[icmpNames!.indexOf(name)]);
        return Number.isFinite(v) ? v : 0;
      };
      cur.icmp = {
        inEchos: get('InEchos'),
        inEchoReps: get('InEchoReps'),
        outEchos: get('OutEchos'),
        outEchoReps: get('OutEchoReps'),
      };
    }
  }
  return { namespaces };
}

/** The host's bridges with their ports (links of the host namespace whose master they are). */
export function bridges(snap: NetworkSnapshot): { name: string; up: boolean; ports: NetLink[] }[] {
  const host = snap.namespaces.find((n) => n.label === 'host');
  if (!host) return [];
  return host.links
    .filter((l) => l.kind === 'bridge')
    .map((b) => ({ name: b.name, up: b.up, ports: host.links.filter((l) => l.master === b.name) }));
}
