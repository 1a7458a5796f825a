import { existsSync } from 'node:fs';
import { chromium, type Browser, type Page } from 'playwright-core';
import { describe, expect, it } from '../../test/fixtures.js';
import { gaEvent } from '../../test/events.js';
import { startApi, type TestApi } from '../../test/http.js';
import { contentSecurityPolicy } from '../middleware/csp.js';
import { waitPage } from './wait-page.js';

const CHROMIUM = '/usr/bin/chromium';

/** The HTML pages under their Content-Security-Policy, in headless Chromium (Debian's; never a download), offline. */
describe('HTML pages: served from this origin only, under a Content-Security-Policy', () => {
  async function browse(api: TestApi, onTestFinished: (f: () => Promise<void>) => void) {
    if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: run bash scripts/ensure-tools.sh (apt-get install chromium)`);
    const browser: Browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    onTestFinished(async () => {
      await browser.close();
      await api.close();
    });
    const context = await browser.newContext();
    // offline: anything but this server is refused and recorded (a CDN script would leave the page blank)
    const elsewhere: string[] = [];
    await context.route((url) => !url.href.startsWith(api.url), (route) => {
      elsewhere.push(route.request().url());
      return route.abort();
    });
    const page: Page = await context.newPage();
    // (page scripts as strings: this project's TypeScript has no DOM types)
    await page.addInitScript({
      content: "window.violations = []; document.addEventListener('securitypolicyviolation', (e) => window.violations.push(e.violatedDirective + ' ' + e.blockedURI));",
    });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    const violations = () => page.evaluate<string[]>('window.violations');
    return { page, elsewhere, errors, violations };
  }

  const scriptSrc = (policy: string | null) => /(?:^|; )script-src ([^;]*)/.exec(policy ?? '')?.[1] ?? '';

  it('/docs renders the API reference from the bundle this server serves, with no request elsewhere and no CSP violation', async ({ engine, onTestFinished }) => {
    const api = await startApi(engine);
    const res = await fetch(`${api.url}/docs`);
    const html = await res.text();
    const policy = res.headers.get('content-security-policy');
    expect(policy).toBeTruthy();
    expect(scriptSrc(policy)).toMatch(/^'self' 'sha256-[A-Za-z0-9+/]+=*'$/);
    expect(policy).not.toMatch(/https?:|unsafe-eval|\*/);
    expect(html).not.toMatch(/<script[^>]+src="https?:/);
    const src = /<script src="([^"]+)"><\/script>/.exec(html)![1]!;
    const bundle = await fetch(api.url + src);
    expect(bundle.status).toBe(200);
    expect(bundle.headers.get('content-type')).toContain('javascript');
    expect((await bundle.arrayBuffer()).byteLength).toBeGreaterThan(500_000);

    const { page, elsewhere, errors, violations } = await browse(api, onTestFinished);
    await page.goto(`${api.url}/docs`);
    // Scalar renders the spec's title and its operations: the bundle ran and fetched /openapi.json
    await page.getByRole('heading', { name: 'Floodgate API' }).first().waitFor({ timeout: 30_000 });
    await page.getByText('Hold tickets (general admission').first().waitFor();
    expect(await page.getByText('Ask AI').count(), 'the AI agent (a Scalar service) is off').toBe(0);
    expect(elsewhere).toEqual([]);
    // the bundle probes eval() once and renders without it: the policy never allows eval
    expect((await violations()).filter((v) => v !== 'script-src eval')).toEqual([]);
    expect(errors).toEqual([]);
  }, 60_000);

  it('the waiting-room page runs its inline script under the policy, and an injected script would not run', async ({ engine, onTestFinished }) => {
    const api = await startApi(engine);
    const ev = await engine.createEvent({ ...gaEvent(10, { name: 'Policy Night' }), salesOpenAt: new Date(Date.now() - 1000).toISOString() });
    const res = await fetch(`${api.url}/wait/${ev.id}`);
    const policy = res.headers.get('content-security-policy')!;
    expect(scriptSrc(policy)).toMatch(/^'self' 'sha256-[A-Za-z0-9+/]+=*'$/);
    expect(policy).toContain("connect-src 'self'");
    expect(policy).toContain("object-src 'none'");
    // the policy names exactly the page's own script: the same page with one more inline script gets another policy
    const html = await res.text();
    expect(contentSecurityPolicy(html)).toBe(policy);
    expect(contentSecurityPolicy(html.replace('</body>', '<script>alert(1)</script></body>'))).not.toBe(policy);

    const { page, elsewhere, errors, violations } = await browse(api, onTestFinished);
    await page.goto(`${api.url}/wait/${ev.id}`);
    await page.getByText('Policy Night').waitFor(); // written by the inline script from /api/events/:id
    // a script injected into the page is refused by the policy
    await page.evaluate("const s = document.createElement('script'); s.textContent = 'window.injected = true'; document.body.append(s);");
    expect(await page.evaluate('typeof window.injected')).toBe('undefined');
    expect((await violations()).map((v) => v.split(' ')[0])).toEqual(['script-src-elem']);
    expect(elsewhere).toEqual([]);
    expect(errors).toEqual([]);
  }, 60_000);

  it("the waiting room's policy holds for every event: its executable script does not depend on the event id", () => {
    expect(contentSecurityPolicy(waitPage('ev_aaaaaaaaaaaa'))).toBe(contentSecurityPolicy(waitPage('ev_0123456789ab')));
  });
});
