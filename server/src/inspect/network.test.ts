import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { testLab } from '../../../tests/unit-support/test-lab.ts';
import { runCheck } from './checks.ts';
import { bridges, type NetworkSnapshot, parseNetwork } from './network.ts';

const ICMP_NAMES =
  'Icmp: InMsgs InErrors InCsumErrors InDestUnreachs InTimeExcds InParmProbs InSrcQuenchs InRedirects InEchos InEchoReps InTimestamps InTimestampReps InAddrMasks InAddrMaskReps OutMsgs OutErrors OutRateLimitGlobal OutRateLimitHost OutDestUnreachs OutTimeExcds OutParmProbs OutSrcQuenchs OutRedirects OutEchos OutEchoReps OutTimestamps OutTimestampReps OutAddrMasks OutAddrMaskReps';
/** The Icmp values line with only InEchos, InEchoReps, OutEchos and OutEchoReps set. */
function icmp(inEchos: number, inEchoReps: number, outEchos: number, outEchoReps: number): string {
  const v = Array<number>(29).fill(0);
  v[8] = inEchos;
  v[9] = inEchoReps;
  v[23] = outEchos;
  v[24] = outEchoReps;
  return `Icmp: ${v.join(' ')}`;
}
const link = (
  name: string,
  kind: string,
  o: { up?: boolean; master?: string; rx?: number; tx?: number } = {},
) => ({
  ifindex: 1,
  ifname: name,
  flags: o.up === false ? ['BROADCAST'] : ['BROADCAST', 'UP', 'LOWER_UP'],
  ...(kind === 'loopback'
    ? { link_type: 'loopback' }
    : { link_type: 'ether', linkinfo: { info_kind: kind } }),
  ...(o.master ? { master: o.master } : {}),
  stats64: { rx: { bytes: 0, packets: o.rx ?? 0 }, tx: { bytes: 0, packets: o.tx ?? 0 } },
});
const addr = (name: string, a: string, len: number) => ({
  ifname: name,
  addr_info: [
    { family: 'inet', local: a, prefixlen: len },
    { family: 'inet6', local: 'fe80::1', prefixlen: 64 },
  ],
});

/** vm-network's output for: host with br0 (two veth ports), netns red and blue, after `ip netns exec red ping blue`. */
function sample(o: { pinged: boolean; portTraffic: boolean; brUp?: boolean }): string {
  const t = o.portTraffic ? 5 : 0;
  const ns = (ino: string, label: string, links: object[], addrs: object[], snmp: string) =>
    [
      `NETNS ${ino} ${label}`,
      `LINKS ${JSON.stringify(links)}`,
      `ADDRS ${JSON.stringify(addrs)}`,
      `SNMP ${ICMP_NAMES}`,
      `SNMP ${snmp}`,
    ].join('\n');
  return `${[
    ns(
      '4026531840',
      'host',
      [
        link('lo', 'loopback'),
        link('br0', 'bridge', { up: o.brUp ?? true }),
        link('veth-red-br', 'veth', { master: 'br0', rx: t, tx: t }),
        link('veth-blue-br', 'veth', { master: 'br0', rx: t, tx: t }),
      ],
      [addr('lo', '127.0.0.1', 8)],
      icmp(0, 0, 0, 0),
    ),
    ns(
      '4026532200',
      'netns:red',
      [link('lo', 'loopback'), link('veth-red', 'veth')],
      [addr('veth-red', '10.0.0.1', 24)],
      o.pinged ? icmp(0, 3, 3, 0) : icmp(0, 0, 0, 0),
    ),
    ns(
      '4026532300',
      'netns:blue',
      [link('lo', 'loopback'), link('veth-blue', 'veth')],
      [addr('veth-blue', '10.0.0.2', 24)],
      o.pinged ? icmp(3, 0, 0, 3) : icmp(0, 0, 0, 0),
    ),
  ].join('\n')}\nEND\n`;
}

const ctx = (snap: NetworkSnapshot) => ({
  processes: async () => assert.fail('not needed'),
  cgroup: async () => assert.fail('not needed'),
  mounts: async () => assert.fail('not needed'),
  network: async () => snap,
});

describe('network snapshot (vm/guest/vm-network)', () => {
  test('namespaces, links with kind, master and counters, IPv4 addresses, echo counters', () => {
    const snap = parseNetwork(sample({ pinged: true, portTraffic: true }));
    assert.deepEqual(
      snap.namespaces.map((n) => n.label),
      ['host', 'netns:red', 'netns:blue'],
    );
    const red = snap.namespaces[1]!;
    assert.deepEqual(red.addresses, { 'veth-red': ['10.0.0.1/24'] });
    assert.deepEqual(red.icmp, { inEchos: 0, inEchoReps: 3, outEchos: 3, outEchoReps: 0 });
    const [br] = bridges(snap);
    assert.equal(br?.name, 'br0');
    assert.deepEqual(
      br?.ports.map((p) => [p.name, p.kind, p.up, p.rxPackets]),
      [
        ['veth-red-br', 'veth', true, 5],
        ['veth-blue-br', 'veth', true, 5],
      ],
    );
  });

  test('garbage and cut-off output give what could be read, never a throw', () => {
    assert.deepEqual(parseNetwork('').namespaces, []);
    const snap = parseNetwork('NETNS 1 host\nLINKS [{"ifname":\nADDRS not json\nSNMP Icmp: a b\n');
    assert.deepEqual(snap.namespaces[0]?.links, []);
    assert.deepEqual(snap.namespaces[0]?.addresses, {});
  });
});

describe('the networking checks (checks.ts)', () => {
  const bridge = testLab({ checks: [{ id: 'bridge-up', kind: 'bridge', title: 't', hint: 'h' }] }).checks[0]!;
  const ping = testLab({ checks: [{ id: 'ping-across', kind: 'ping', title: 't', hint: 'h' }] }).checks[0]!;

  test('bridge: passes with a bridge up and two ports up; fails while it is down', async () => {
    const ok = await runCheck(
      bridge,
      ctx(parseNetwork(sample({ pinged: false, portTraffic: false }))),
      undefined,
    );
    assert.equal(ok.passed, true);
    assert.match(ok.message, /br0.*veth-red-br, veth-blue-br/);
    const down = await runCheck(
      bridge,
      ctx(parseNetwork(sample({ pinged: false, portTraffic: false, brUp: false }))),
      undefined,
    );
    assert.equal(down.passed, false);
    assert.equal(down.hint, 'h');
  });

  test('ping: needs an answered echo between two namespaces and traffic through two bridge ports', async () => {
    const ok = await runCheck(
      ping,
      ctx(parseNetwork(sample({ pinged: true, portTraffic: true }))),
      undefined,
    );
    assert.equal(ok.passed, true);
    assert.match(ok.message, /blue answered red's ping \(3 replies\), through bridge br0/);
    const noPing = await runCheck(
      ping,
      ctx(parseNetwork(sample({ pinged: false, portTraffic: true }))),
      undefined,
    );
    assert.equal(noPing.passed, false);
    const notThroughBridge = await runCheck(
      ping,
      ctx(parseNetwork(sample({ pinged: true, portTraffic: false }))),
      undefined,
    );
    assert.equal(notThroughBridge.passed, false);
    assert.match(notThroughBridge.message, /not through two ports of a bridge/);
  });

  test('on the lab server (no network snapshot) they say they need the in-browser lab', async () => {
    const r = await runCheck(
      ping,
      {
        processes: async () => assert.fail('no'),
        cgroup: async () => assert.fail('no'),
        mounts: async () => assert.fail('no'),
      },
      undefined,
    );
    assert.equal(r.passed, false);
    assert.match(r.message, /only in the in-browser lab/);
  });
});
