/**
 * The admin CLI prints only what a terminal shows as text: whatever the server sends (or
 * a reader managed to put into a field, such as a forged client address) cannot reach
 * the operator's terminal as an escape sequence, a carriage return, a C1 control or a
 * bidi override. Checked on the table, and on the whole CLI against a stub server.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer } from 'node:http';
import { test } from 'node:test';
import { runScript } from '../tests/support/run-script.ts';
import { formatTable, safeJson, safeText } from './admin.ts';

// What must never reach the terminal raw: C0 controls but the newline (ESC, BEL, CR, BS,
// ...), DEL, C1 controls (U+009B is a one-character CSI in some terminals), bidi embeddings,
// overrides, isolates and marks, zero-width characters, line/paragraph separators, BOM.
const UNSAFE =
  // biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point
  /[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200b-\u200f\u202a-\u202e\u2028\u2029\u2066-\u2069\ufeff]/u;

const HOSTILE = [
  '\x1b]0;pwned\x07', // OSC: set the window title
  '\x1b]52;c;cm0gLXJmIH4=\x07', // OSC 52: write the clipboard
  '\x1b[2J\x1b[H', // clear the screen
  'ok\rFAKE', // carriage return: overwrite the line
  '\x9b31m', // C1 CSI
  '\x1bP+q\x1b\\', // DCS
  'abc\u202Efdp.exe', // right-to-left override
  '\u2066x\u2069\u200b\ufeff\u2028', // isolates, zero width, BOM, line separator
  'bell\x07\x08\x7f',
];

const session = (i: number, s: string) => ({
  id: `id-${s}`,
  lab: `lab${s}`,
  client: `10.0.0.${i}${s}`,
  createdAt: '2026-12-01T10:00:00.000Z',
  expiresAt: '2026-12-01T10:30:00.000Z',
  ageSeconds: 5,
  idleSeconds: 1,
  terminals: { attached: 1, open: 2 },
  resources:
    i % 2
      ? { error: `engine said ${s}` }
      : { memoryBytes: 1048576, memoryLimitBytes: 134217728, pids: 3, pidsLimit: 100, cpuSeconds: 0.5 },
});

// For failure messages: this test's own output must not carry what it looks for.
const visible = (s: string) => s.replace(/[^\x20-\x7e\n]/gu, (c) => `\\u{${c.codePointAt(0)!.toString(16)}}`);
const noUnsafe = (text: string, what: string) => {
  const m = UNSAFE.exec(text);
  assert.ok(m === null, `${what}: unsafe character ${visible(m?.[0] ?? '')} in:\n${visible(text)}`);
};
const matches = (text: string, re: RegExp, what: string) =>
  assert.ok(re.test(text), `${what}:\n${visible(text)}`);

test('formatTable: no control, C1 or bidi character from any field reaches the output', () => {
  const out = formatTable(HOSTILE.map((s, i) => session(i, s)));
  noUnsafe(out, 'the table');
  assert.equal(out.split('\n').length, HOSTILE.length + 1, 'one line per session, plus the header');
  matches(out, /id-\?\]0;pwned\?/, 'what was there shows, with ? for each control character');
});

test('formatTable: ordinary text, accents and other scripts stay as they are', () => {
  const out = formatTable([session(0, 'café-日本-ü')]);
  assert.match(out, /id-café-日本-ü\s+labcafé-日本-ü\s+10\.0\.0\.0café-日本-ü/);
});

// The whole CLI against a stub server answering with hostile values everywhere it can.
async function stub(): Promise<{ url: string; close(): Promise<void>; body: unknown }> {
  const body = {
    sessions: HOSTILE.map((s, i) => session(i, s)),
    pool: { size: 1, ready: Object.fromEntries(HOSTILE.map((s, i) => [`lab${i}${s}`, 1])) },
    draining: false,
  };
  const srv = createServer((req, res) => {
    if (req.method === 'GET') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    } else {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { code: 'not_found', message: HOSTILE.join(' ') } }));
    }
  });
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const addr = srv.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    body,
    close: () => new Promise((resolve) => srv.close(() => resolve())),
  };
}

const cli = (args: string[]) => runScript('scripts/admin.ts', args, { CL_ADMIN_TOKEN: '' });

test('the CLI: list, list --json and a refused end print nothing a terminal would execute', async () => {
  const s = await stub();
  try {
    const list = await cli(['list', '--url', s.url]);
    assert.equal(list.code, 0, list.stderr);
    matches(list.stdout, /9 session\(s\); warm pool \(1 per lab\): lab0\?\]0;pwned\? 1/, 'the summary');
    const json = await cli(['list', '--json', '--url', s.url]);
    assert.equal(json.code, 0, json.stderr);
    assert.deepEqual(JSON.parse(json.stdout), s.body, '--json keeps every value (escaped, not lost)');
    const end = await cli(['end', 'someone', '--url', s.url]);
    assert.equal(end.code, 1);
    matches(end.stderr, /^admin: 404: \?\]0;pwned\?/, 'the refusal');
    for (const [name, r] of Object.entries({ list, json, end })) {
      for (const [stream, text] of Object.entries({ stdout: r.stdout, stderr: r.stderr }))
        noUnsafe(text, `${name} ${stream}`);
    }
  } finally {
    await s.close();
  }
});

test('safeText and safeJson: one line of plain text; JSON that parses back to the same value', () => {
  for (const s of HOSTILE) {
    noUnsafe(safeText(s), 'safeText');
    assert.ok(!safeText(`${s}\n\t`).includes('\n'), 'one line');
    const j = safeJson({ s, list: [s] });
    noUnsafe(j.replace(/\n/g, ' '), 'safeJson');
    assert.deepEqual(JSON.parse(j), { s, list: [s] });
  }
  assert.equal(safeText('\u{1D173}x\u{E0001}'), '?x?', 'astral format characters too');
  assert.equal(safeText('café 日本 ✓'), 'café 日本 ✓');
  assert.equal(safeText(42), '42');
});

test('the CLI: an answer of the wrong shape is a clear error, not a crash', async () => {
  const srv = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ sessions: [{ id: 'x', ageSeconds: '\x1b[2J' }], pool: {}, draining: false }));
  });
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const addr = srv.address();
  try {
    const r = await cli([
      'list',
      '--url',
      `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`,
    ]);
    assert.equal(r.code, 1);
    matches(r.stderr, /^admin: the server's answer is not a session list \(sessions\.0\./, 'the error');
    noUnsafe(r.stderr, 'stderr');
  } finally {
    await new Promise((resolve) => srv.close(resolve));
  }
});
