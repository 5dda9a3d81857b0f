import assert from 'node:assert/strict';
import { BlockList, isIP } from 'node:net';
import { test } from 'node:test';
import { clientKey, INVALID_CLIENT_KEY } from './client-key.ts';

test('IPv4: the address as it is', () => {
  for (const ip of ['203.0.113.7', '127.0.0.1', '0.0.0.0', '255.255.255.255', '10.0.0.1']) {
    assert.equal(clientKey(ip), ip);
  }
  assert.equal(clientKey('203.0.113.7:54321'), '203.0.113.7', 'a port after it (some proxies add one)');
});

test('IPv4-mapped IPv6 is the IPv4 client, in every spelling', () => {
  for (const ip of [
    '::ffff:203.0.113.7',
    '::FFFF:203.0.113.7',
    '0:0:0:0:0:ffff:203.0.113.7',
    '0000:0000:0000:0000:0000:FFFF:203.0.113.7',
    '::ffff:cb00:7107',
    '[::ffff:203.0.113.7]',
    '[::ffff:203.0.113.7]:443',
  ]) {
    assert.equal(clientKey(ip), '203.0.113.7', ip);
  }
  // Not mapped: IPv4-compatible (deprecated) and IPv4-translated addresses are IPv6.
  assert.equal(clientKey('::203.0.113.7'), '::/64');
  assert.equal(clientKey('::ffff:0:203.0.113.7'), '::/64');
  assert.equal(clientKey('64:ff9b::203.0.113.7'), '64:ff9b::/64');
});

test('IPv6: the /64 in RFC 5952 form, whatever the spelling', () => {
  const cases: [string, string][] = [
    ['2001:db8:1:2:a:b:c:d', '2001:db8:1:2::/64'],
    ['2001:DB8:1:2:A:B:C:D', '2001:db8:1:2::/64'],
    ['2001:0db8:0001:0002:000a:000b:000c:000d', '2001:db8:1:2::/64'],
    ['2001:db8:1:2::1', '2001:db8:1:2::/64'],
    ['2001:db8:1:2::', '2001:db8:1:2::/64'],
    ['2001:db8::1', '2001:db8::/64'],
    ['2001:db8::', '2001:db8::/64'],
    ['2001:db8:0:0:1::', '2001:db8::/64'],
    ['2001:0:0:1::5', '2001:0:0:1::/64'], // the longest zero run is compressed, not the first
    ['2001:db8:0:1:2:3:4:5', '2001:db8:0:1::/64'], // a single zero group is never "::"
    ['2001:db8:1:2:0:0:0:1', '2001:db8:1:2::/64'],
    ['1:2:3:4:5:6:7:8', '1:2:3:4::/64'],
    ['::1', '::/64'],
    ['::', '::/64'],
    ['fe80::1%eth0', 'fe80::/64'],
    ['fe80::abcd:1%wlp2s0', 'fe80::/64'],
    ['[2001:db8:1:2::1]', '2001:db8:1:2::/64'],
    ['[2001:db8:1:2::1]:8080', '2001:db8:1:2::/64'],
    ['[fe80::1%25eth0]', 'fe80::/64'],
    // The longest text an address can have: still an address.
    [`[0000:0000:0000:0000:0000:FFFF:255.255.255.255%${'z'.repeat(32)}]:65535`, '255.255.255.255'],
    [`[2001:0db8:0000:0000:0000:0000:0000:0001%${'z'.repeat(32)}]:65535`, '2001:db8::/64'],
    ['2001:db8:1:2:3:4:198.51.100.1', '2001:db8:1:2::/64'],
  ];
  for (const [ip, key] of cases) assert.equal(clientKey(ip), key, ip);
});

test('IPv6: every address of a /64 has one key, and another /64 another', () => {
  const a = ['2001:db8:aa:bb::1', '2001:db8:aa:bb:ffff:ffff:ffff:ffff', '2001:db8:aa:bb:1234:5678:9abc:def0'];
  assert.equal(new Set(a.map(clientKey)).size, 1);
  const b = ['2001:db8:aa:bc::1', '2001:db8:aa:ba::1', '2001:db9:aa:bb::1', '2001:db8:aa:bb::1'];
  assert.equal(new Set(b.map(clientKey)).size, 4);
});

// Random addresses in many spellings, checked against two independent parsers: node:net's
// BlockList says whether the address lies in the key's /64, and the WHATWG URL serializer
// (RFC 5952-style: lower case, first longest zero run) gives the canonical prefix text.
test('IPv6: random addresses agree with node:net and the URL serializer', () => {
  let seed = 42;
  const rand = (n: number) => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed % n;
  };
  // Many zero groups, so that "::" compression gets exercised.
  const group = () => (rand(3) === 0 ? 0 : rand(0x10000));
  const spell = (g: number[]): string => {
    const hex = g.map((x) => {
      const h = x.toString(16);
      return rand(4) === 0 ? h.padStart(4, '0') : h;
    });
    const up = (t: string) => (rand(2) ? t.toUpperCase() : t);
    // Compress some run of zero groups, chosen at random (not necessarily the longest).
    const runs: [number, number][] = [];
    for (let i = 0; i < 8; i++) {
      if (g[i] !== 0) continue;
      let j = i;
      while (j < 8 && g[j] === 0) j++;
      runs.push([i, j]);
      i = j;
    }
    if (runs.length && rand(3)) {
      const [i, j] = runs[rand(runs.length)]!;
      return up(`${hex.slice(0, i).join(':')}::${hex.slice(j).join(':')}`);
    }
    return up(hex.join(':'));
  };
  for (let n = 0; n < 2000; n++) {
    const g = Array.from({ length: 8 }, group);
    if (g.slice(0, 5).every((x) => x === 0) && g[5] === 0xffff) continue; // mapped: tested above
    const ip = spell(g);
    assert.equal(isIP(ip), 6, `the generator makes valid addresses: ${ip}`);
    const key = clientKey(ip);
    const m = /^(.*)\/64$/.exec(key);
    assert.ok(m, `${ip} → ${key}`);
    const list = new BlockList();
    list.addSubnet(m[1]!, 64, 'ipv6');
    assert.ok(list.check(ip, 'ipv6'), `${ip} lies in ${key}`);
    const prefix = [...g.slice(0, 4), 0, 0, 0, 0].map((x) => x.toString(16)).join(':');
    assert.equal(m[1], new URL(`http://[${prefix}]/`).hostname.slice(1, -1), `${ip}: canonical text`);
  }
});

test('anything else: one fixed key, never a throw', () => {
  const garbage: unknown[] = [
    '',
    ' ',
    'localhost',
    'example.com',
    '1.2.3',
    '1.2.3.4.5',
    '256.1.1.1',
    '01.2.3.4', // leading zero: octal to inet_aton, refused
    '1.2.3.-4',
    '1.2.3.4:',
    '1.2.3.4:99999999',
    ':1.2.3.4',
    '1:2:3:4:5:6:7',
    '1:2:3:4:5:6:7:8:9',
    '1::2::3',
    ':::',
    '1:',
    ':1',
    '12345::',
    'g::1',
    '1:2:3:4:5:6:7::8',
    '::ffff:1.2.3.256',
    '::1.2.3',
    'fe80::1%',
    'fe80::1%eth 0',
    'fe80::1%a%b',
    `fe80::1%${'z'.repeat(33)}`,
    '[::1',
    '::1]',
    '[::1]x',
    '[1.2.3.4]',
    '[]',
    '2001:db8::1/64',
    '1.2.3.4\n',
    ' 203.0.113.7',
    '1.2.3.4\x00',
    '\u0661.2.3.4', // Arabic-Indic digit one
    '１.２.３.４', // full-width digits
    `${'1:'.repeat(200)}1`,
    'a'.repeat(10_000),
    INVALID_CLIENT_KEY,
    undefined,
    null,
    42,
    {},
  ];
  for (const g of garbage) {
    assert.equal(clientKey(g as string), INVALID_CLIENT_KEY, JSON.stringify(g));
  }
  // It cannot be the key of an address.
  assert.equal(isIP(INVALID_CLIENT_KEY), 0);
  assert.ok(!INVALID_CLIENT_KEY.endsWith('/64'));
});
