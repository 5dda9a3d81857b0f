/**
 * The site as `npm start` serves it: compressed, with security headers and a CSP that
 * must not block anything the site does. Search (Pagefind: a worker, WebAssembly and its
 * pre-gzipped index files) and a lab start run in Chromium with no CSP report and no
 * failed request.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Browser } from 'playwright-core';
import {
  buildSite,
  type LabServer,
  launchBrowser,
  lessonWithLab,
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
});
