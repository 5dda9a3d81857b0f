import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { contentSecurityPolicy, inlineScriptHashes } from './security-headers.ts';

test('inline scripts of every page are hashed; external and JSON data scripts are not', () => {
  const dir = mkdtempSync(join(tmpdir(), 'csp-'));
  try {
    mkdirSync(join(dir, 'a'));
    writeFileSync(join(dir, 'index.html'), '<script>x()</script><script src="/a.js"></script>');
    writeFileSync(
      join(dir, 'a', 'index.html'),
      '<script type="module">x()</script><script type="application/ld+json">{}</script><script>y()</script>',
    );
    const hashes = inlineScriptHashes(dir);
    // sha256("x()") and sha256("y()"), base64
    assert.deepEqual(hashes, [
      "'sha256-D6IGS8VMvCoyaR/l0h9tERrBTATY01CoPS7l6xDv0kI='",
      "'sha256-nwG+cZ8J4yZ7RZ4RWxVDwCwkMn9GJelY2VgKXNi2Uvk='",
    ]);
    const csp = contentSecurityPolicy(hashes);
    assert.match(csp, /script-src 'self' 'wasm-unsafe-eval' 'sha256-/);
    assert.doesNotMatch(csp, /'unsafe-eval'|script-src[^;]*'unsafe-inline'/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
