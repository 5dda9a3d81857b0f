/**
 * The site as `npm start` serves it: compressed, with security headers and a CSP that
 * must not block anything the site does. Search (Pagefind: a worker, WebAssembly and its
 * pre-gzipped index files) and a lab start run in Chromium with no CSP report and no
 * failed request.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Browser } from 'playwright-core';
import { AdminStatusReply } from '../../server/src/contract/rest.ts';
import {
  buildSite,
  type LabServer,
  launchBrowser,
  lessonWithLab,
  poll,
  startLabServer,
  waitForState,
} from './support.ts';

describe('the site served by our server (real server, Chromium)', () => {
  let site: string;
  let server: LabServer;
  let browser: Browser;
  before(async () => {
    site = buildSite();
    server = await startLabServer(site, { CL_POOL_SIZE: '0' });
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  test('pages are compressed and carry the security headers; the CSP lists inline scripts by hash', async () => {
    const r = await fetch(`${server.url}/`, { headers: { 'accept-encoding': 'br, gzip' } });
    assert.equal(r.status, 200);
    assert.match(r.headers.get('content-encoding') ?? '', /br|gzip/);
    const csp = r.headers.get('content-security-policy') ?? '';
    assert.match(csp, /default-src 'self'/);
    assert.match(csp, /frame-ancestors 'none'/);
    assert.match(csp, /'sha256-[A-Za-z0-9+/=]+'/);
    assert.doesNotMatch(csp, /script-src[^;]*'unsafe-inline'/);
    assert.equal(r.headers.get('x-content-type-options'), 'nosniff');
    const api = await fetch(`${server.url}/api/v1/health`);
    assert.equal(api.headers.get('x-content-type-options'), 'nosniff');
    assert.equal(api.headers.get('content-security-policy'), null, 'the CSP is for pages');
    const index = await fetch(`${server.url}/pagefind/pagefind-entry.json`);
    assert.equal(index.status, 200);
    const wasm = await fetch(`${server.url}/pagefind/wasm.en.pagefind`, {
      headers: { 'accept-encoding': 'br, gzip' },
    });
    assert.equal(
      wasm.headers.get('content-encoding'),
      null,
      'Pagefind files are gzip already: sent as they are',
    );
  });

  test('search and a lab work under the CSP: no violation, no failed request', async () => {
    const page = await browser.newPage();
    const problems: string[] = [];
    page.on('console', (m) => {
      if (/Content Security Policy|Refused to|Failed to/i.test(m.text()))
        problems.push(m.text().slice(0, 200));
    });
    page.on('requestfailed', (req) =>
      problems.push(`failed: ${req.url()} ${req.failure()?.errorText ?? ''}`),
    );
    await page.goto(`${server.url}/`, { waitUntil: 'networkidle' });
    await page.waitForFunction(
      () => !document.querySelector('button[data-open-modal]')?.hasAttribute('disabled'),
    );
    await page.locator('button[data-open-modal]').click();
    await page.locator('site-search dialog input').first().fill('namespace');
    await page.locator('site-search dialog .pagefind-ui__result-link').first().waitFor({ timeout: 15_000 });
    assert.ok((await page.locator('site-search dialog .pagefind-ui__result-link').count()) > 0);

    const lesson = lessonWithLab(site, 'processes');
    await page.goto(`${server.url}${lesson}`, { waitUntil: 'networkidle' });
    await page.locator('[data-lab="processes"] [data-action="start"]').first().click();
    await waitForState(page, 'processes', 'ready');
    assert.deepEqual(problems, []);
    await page.close();
  });

  test("a lesson page with a lab in view has a spare made for it, and that page's Start takes it", async () => {
    // The server keeps no spares (CL_POOL_SIZE=0): any spare is the page's hint at work.
    const pool = async () => {
      const r = await fetch(`${server.url}/api/v1/admin/status`);
      const body = AdminStatusReply.parse(await r.json());
      return { ready: body.pool.ready.namespaces ?? 0, target: body.pool.targets?.namespaces ?? 0 };
    };
    assert.deepEqual(await pool(), { ready: 0, target: 0 });
    const page = await browser.newPage();
    const hints: number[] = [];
    page.on('response', (r) => {
      if (r.url().endsWith('/api/v1/labs/namespaces/hint')) hints.push(r.status());
    });
    await page.goto(`${server.url}${lessonWithLab(site, 'namespaces')}`, { waitUntil: 'networkidle' });
    const root = page.locator('[data-lab="namespaces"]').first();
    await root.scrollIntoViewIfNeeded();
    const ready = await poll(pool, (p) => p.ready === 1, 30_000, 200);
    assert.deepEqual(ready, { ready: 1, target: 1 }, `the hint made one spare (hints answered: ${hints})`);
    assert.deepEqual(hints, [202], 'one hint per page view');
    await root.locator('[data-action="start"]').click();
    await waitForState(page, 'namespaces', 'ready');
    // The Start took the spare and used up the hint: nothing is left, nothing is made.
    assert.deepEqual(await pool(), { ready: 0, target: 0 });
    await page.close();
  });
});
