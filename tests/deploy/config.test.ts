/**
 * The self-hosting configuration (server/src/config.ts): the new variables parse, bad
 * values fail at start with one line per variable and exit 2, nothing half-starts.
 * Also the image's app assembly (deploy/assemble.ts).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { describe, test } from 'node:test';
import ts from 'typescript';
import {
  assemble,
  dependencyClosure,
  keepInPackage,
  SERVER_PACKAGE,
  SOURCES,
  serverDependencies,
} from '../../deploy/assemble.ts';
import { loadLabs } from '../../labs/load.ts';
import { ConfigError, loadConfig } from '../../server/src/config.ts';
import { ROOT } from './support.ts';

const fails = (env: Record<string, string>, re: RegExp) =>
  assert.throws(
    () => loadConfig(env),
    (err: unknown) => err instanceof ConfigError && re.test(err.message),
  );

describe('configuration', () => {
  test('defaults: open, 10 s drain grace, no tokens, every lab, no overrides, no proxy', () => {
    const c = loadConfig({});
    assert.equal(c.mode, 'open');
    assert.equal(c.drainGraceMs, 10_000);
    assert.equal(c.metricsToken, undefined);
    assert.equal(c.adminToken, undefined);
    assert.deepEqual(c.labs, []);
    assert.deepEqual(c.labLimits, {});
    assert.equal(c.trustProxy, false);
    assert.equal(c.accessCode, undefined);
    assert.ok(Object.isFrozen(c));
  });

  test('code mode, labs, limits, drain, tokens', () => {
    const c = loadConfig({
      CL_MODE: 'code',
      CL_ACCESS_CODE: 'spring-2026_x',
      CL_ACCESS_CONTACT: 'Ana',
      CL_LABS: ' processes , namespaces,',
      CL_LAB_MEMORY: '256M',
      CL_LAB_CPUS: '0.25',
      CL_LAB_PIDS: '200',
      CL_LAB_TMP: '32m',
      CL_DRAIN_GRACE: '0',
      CL_METRICS_TOKEN: 'm'.repeat(16),
      CL_ADMIN_TOKEN: 'a'.repeat(32),
    });
    assert.equal(c.mode, 'code');
    assert.equal(c.accessCode, 'spring-2026_x');
    assert.equal(c.accessContact, 'Ana');
    assert.deepEqual(c.labs, ['processes', 'namespaces']);
    assert.deepEqual(c.labLimits, { memory: '256m', cpus: 0.25, pids: 200, tmp: '32m' });
    assert.equal(c.drainGraceMs, 0);
    assert.equal(c.metricsToken, 'm'.repeat(16));
    assert.equal(c.adminToken, 'a'.repeat(32));
  });

  test('CL_TRUST_PROXY: booleans or proxy addresses', () => {
    assert.equal(loadConfig({ CL_TRUST_PROXY: 'true' }).trustProxy, true);
    assert.equal(loadConfig({ CL_TRUST_PROXY: '0' }).trustProxy, false);
    assert.equal(loadConfig({ CL_TRUST_PROXY: 'loopback' }).trustProxy, 'loopback');
    assert.equal(
      loadConfig({ CL_TRUST_PROXY: '10.0.0.0/8, ::1,127.0.0.1' }).trustProxy,
      '10.0.0.0/8,::1,127.0.0.1',
    );
    fails({ CL_TRUST_PROXY: 'yes' }, /CL_TRUST_PROXY: true, false, or proxy addresses/);
    fails({ CL_TRUST_PROXY: '10.0.0.0/33' }, /CL_TRUST_PROXY/);
  });

  test('CL_ENGINE_TIMEOUT: 5 s by default, a duration of at least 500 ms', () => {
    assert.equal(loadConfig({}).engineTimeoutMs, 5000);
    assert.equal(loadConfig({ CL_ENGINE_TIMEOUT: '90s' }).engineTimeoutMs, 90_000);
    fails({ CL_ENGINE_TIMEOUT: '100ms' }, /CL_ENGINE_TIMEOUT: at least 500ms/);
    fails({ CL_ENGINE_TIMEOUT: 'slow' }, /CL_ENGINE_TIMEOUT/);
  });

  test('CL_LAB_UIDS: auto by default, or an inclusive range that never holds root', () => {
    assert.equal(loadConfig({}).labUids, 'auto');
    assert.equal(loadConfig({ CL_LAB_UIDS: ' auto ' }).labUids, 'auto');
    assert.deepEqual(loadConfig({ CL_LAB_UIDS: '100000-199999' }).labUids, { first: 100_000, last: 199_999 });
    assert.deepEqual(loadConfig({ CL_LAB_UIDS: '5000-5000' }).labUids, { first: 5000, last: 5000 });
    assert.ok(Object.isFrozen(loadConfig({ CL_LAB_UIDS: '1-2' }).labUids));
    fails({ CL_LAB_UIDS: '0-1000' }, /CL_LAB_UIDS: a uid range must not include 0 \(root\)/);
    fails({ CL_LAB_UIDS: '2000-1000' }, /CL_LAB_UIDS: "2000-1000" ends before it starts/);
    fails({ CL_LAB_UIDS: '1-4294967295' }, /CL_LAB_UIDS: uids end at 4294967294/);
    fails({ CL_LAB_UIDS: '100000' }, /CL_LAB_UIDS: "100000" is not a uid range/);
    fails({ CL_LAB_UIDS: '-5-10' }, /CL_LAB_UIDS/);
    fails({ CL_LAB_UIDS: 'lots' }, /CL_LAB_UIDS/);
  });

  test('bad values are named, one line each', () => {
    fails({ CL_MODE: 'code' }, /CL_ACCESS_CODE: code mode needs a shared code/);
    fails({ CL_MODE: 'code', CL_ACCESS_CODE: 'short' }, /CL_ACCESS_CODE: 8 to 128 letters/);
    fails({ CL_MODE: 'code', CL_ACCESS_CODE: 'has space in it' }, /CL_ACCESS_CODE/);
    fails({ CL_MODE: 'public' }, /CL_MODE/);
    fails({ CL_LAB_MEMORY: 'lots' }, /CL_LAB_MEMORY: a size such as 256m/);
    fails({ CL_LAB_PIDS: '5' }, /CL_LAB_PIDS/);
    fails({ CL_LAB_CPUS: '-1' }, /CL_LAB_CPUS/);
    fails({ CL_DRAIN_GRACE: 'soon' }, /CL_DRAIN_GRACE/);
    fails({ CL_ADMIN_TOKEN: 'short' }, /CL_ADMIN_TOKEN: at least 16 characters/);
    fails(
      { CL_METRICS_TOKEN: 'short', CL_ADMIN_TOKEN: 'short' },
      /CL_METRICS_TOKEN.*\n.*CL_ADMIN_TOKEN|CL_ADMIN_TOKEN.*\n.*CL_METRICS_TOKEN/,
    );
  });

  test('the server refuses to start on bad configuration: exit 2, the reason on stderr', async () => {
    // The reply lists the labs there are, so a reader of the log can fix the typo.
    const ids = (await loadLabs()).map((l) => l.id).sort();
    for (const [env, re] of [
      [{ CL_MODE: 'code' }, /CL_ACCESS_CODE/],
      [{ CL_LABS: 'processes,nope' }, new RegExp(`CL_LABS: no lab "nope" \\(labs: ${ids.join(', ')}\\)`)],
      [{ CL_LAB_CPUS: '9' }, /CL_LAB_CPUS/],
    ] as const) {
      const r = spawnSync(process.execPath, ['server/src/main.ts'], {
        cwd: ROOT,
        env: { ...process.env, PORT: '0', ...env },
        encoding: 'utf8',
        timeout: 20_000,
      });
      assert.equal(r.status, 2, `${JSON.stringify(env)}: ${r.stdout}${r.stderr}`);
      assert.match(r.stderr, re);
      assert.match(r.stderr, /^invalid configuration:/);
    }
  });
});

describe('the image app (deploy/assemble.ts)', () => {
  /** Bare packages imported (statically, dynamically or for types) by the image's .ts files. */
  const importsOfSources = (): Map<string, string> => {
    const found = new Map<string, string>();
    for (const rel of SOURCES) {
      const abs = join(ROOT, rel);
      const files = statSync(abs).isDirectory()
        ? readdirSync(abs, { recursive: true, encoding: 'utf8' }).map((f) => join(abs, f))
        : [abs];
      for (const f of files) {
        if (!f.endsWith('.ts') || f.endsWith('.test.ts')) continue;
        // TypeScript's own pre-parser: every import, export-from, import() and require().
        for (const { fileName } of ts.preProcessFile(readFileSync(f, 'utf8'), true, true).importedFiles) {
          if (/^[./]|^node:/.test(fileName)) continue;
          const parts = fileName.split('/');
          const name = fileName.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!;
          if (!builtinModules.includes(name)) found.set(name, relative(ROOT, f));
        }
      }
    }
    return found;
  };

  test("the server package declares exactly the packages the image's code imports", () => {
    const declared = serverDependencies();
    const imported = importsOfSources();
    for (const [name, file] of imported) {
      assert.ok(declared.includes(name), `${file} imports ${name}: add it to ${SERVER_PACKAGE}/package.json`);
    }
    for (const name of declared) {
      assert.ok(
        imported.has(name),
        `${SERVER_PACKAGE}/package.json declares ${name}, which nothing shipped imports`,
      );
    }
    for (const n of [
      'fastify',
      '@fastify/static',
      '@fastify/websocket',
      'dockerode',
      'prom-client',
      'zod',
      'ws',
    ]) {
      assert.ok(declared.includes(n), `${n} is a server dependency`);
    }
  });

  test("the image's packages: the server's dependencies with theirs, no build tools", () => {
    const dirs = dependencyClosure(ROOT, serverDependencies(), join(ROOT, SERVER_PACKAGE));
    const names = dirs.map((d) => relative(join(ROOT, 'node_modules'), d));
    assert.ok(names.includes('avvio'), "fastify's own dependencies come along");
    for (const n of ['astro', '@astrojs/starlight', 'playwright-core', 'typescript', 'vite', 'lighthouse']) {
      assert.ok(!names.includes(n), `${n} stays out`);
    }
    assert.throws(() => dependencyClosure(ROOT, ['no-such-package-xyz']), /not installed: run npm ci/);
    assert.ok(!keepInPackage('node-pty', join('prebuilds', 'win32-x64', 'pty.node')));
    assert.ok(keepInPackage('node-pty', join('prebuilds', `linux-${process.arch}`, 'pty.node')));
    assert.ok(!keepInPackage('node-pty', join('deps', 'winpty')));
    assert.ok(keepInPackage('ws', join('lib', 'websocket.js')));
    assert.ok(!keepInPackage('x', join('node_modules', 'y', 'index.js')));
  });

  test('assembles server, labs, site and runtime packages (no tests, no build tools)', () => {
    assert.ok(existsSync(join(ROOT, 'dist', 'index.html')), 'dist/ is built (npm run build)');
    const out = mkdtempSync(join(tmpdir(), 'cl-assemble-'));
    try {
      assemble(out);
      for (const p of [
        'package.json',
        'server/package.json',
        'server/src/main.ts',
        'server/src/engine-filter/main.ts',
        'server/src/engine-filter/healthcheck.ts',
        'labs/seccomp/profile.json',
        'dist/index.html',
        'scripts/admin.ts',
      ]) {
        assert.ok(existsSync(join(out, p)), `${p} is in the image`);
      }
      assert.ok(statSync(join(out, 'deploy/entrypoint.sh')).mode & 0o100, 'the entrypoint stays executable');
      assert.ok(existsSync(join(out, 'node_modules/prom-client/package.json')));
      assert.ok(!existsSync(join(out, 'node_modules/astro')), 'no Astro');
      assert.ok(!existsSync(join(out, 'server/src/app.test.ts')), 'no tests');
      assert.ok(!readdirSync(join(out, 'node_modules')).includes('.bin'));
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});
