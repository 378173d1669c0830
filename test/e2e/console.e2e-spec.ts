import { randomBytes, randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { startAllInOne, type AllInOne } from '../../all-in-one/all-in-one';
import { createTestDatabase, type TestDatabase } from '../support/database';
import { pollUntil } from '../support/poll';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- API answers are checked field by field
type Json = any;

const ADMIN = { email: 'admin@console.test', password: 'correct-horse-battery-staple' };
const ARTIFACTS = path.resolve(__dirname, '..', '..', 'test-artifacts', 'console');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
// A real browser on a shared 2-core machine: each step can take seconds.
jest.setTimeout(240_000);

const AXE_SOURCE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

/**
 * The console in a real browser (Debian's chromium, headless) against the all-in-one with the demo
 * loaded: the demo story from the console's side, axe-core on every page, a screenshot of each.
 */
describe('console (browser)', () => {
  let db: TestDatabase;
  let dataDir: string;
  let profileDir: string;
  let host: AllInOne;
  let base: string;
  let context: BrowserContext;
  let demo: Record<'vp' | 'rep' | 'finance', { email: string; password: string }>;
  const cspViolations: string[] = [];

  const api = async (
    method: string,
    route: string,
    token?: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<{ status: number; body: Json }> => {
    const res = await fetch(`${base}/api/v1${route}`, {
      method,
      headers: {
        ...(token ? { authorization: `Bearer ${token}` } : {}),
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...headers,
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined };
  };
  const token = async (creds: { email: string; password: string }): Promise<string> => {
    const res = await api('POST', '/auth/login', undefined, creds);
    expect(res.status).toBe(200);
    return res.body.accessToken as string;
  };

  beforeAll(async () => {
    db = await createTestDatabase('console', { migrated: true });
    dataDir = mkdtempSync(path.join(tmpdir(), 'custodian-console-'));
    host = await startAllInOne(
      {
        DATABASE_URL: db.url,
        PORT: '0',
        HOST: '127.0.0.1',
        CUSTODIAN_DATA_DIR: dataDir,
        CUSTODIAN_MASTER_KEY: randomBytes(32).toString('base64'),
        CUSTODIAN_ADMIN_EMAIL: ADMIN.email,
        CUSTODIAN_ADMIN_PASSWORD: ADMIN.password,
        LOG_LEVEL: 'silent',
        CUSTODIAN_SHUTDOWN_GRACE_MS: '2000',
      },
      { demo: true },
    );
    base = host.url;
    const banner = readFileSync(path.join(dataDir, 'initial-credentials.txt'), 'utf8');
    const user = (email: string): { email: string; password: string } => ({
      email,
      password: new RegExp(`^\\s+${email.replace(/\./g, '\\.')}\\s+(\\S+)\\s`, 'm').exec(banner)![1],
    });
    demo = {
      vp: user('vp@demo.custodian.local'),
      rep: user('west.rep@demo.custodian.local'),
      finance: user('finance@demo.custodian.local'),
    };
    mkdirSync(ARTIFACTS, { recursive: true });
    profileDir = mkdtempSync(path.join(tmpdir(), 'custodian-chromium-'));
    context = await chromium.launchPersistentContext(profileDir, {
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
      ],
      viewport: { width: 1280, height: 900 },
    });
  }, 120_000);

  afterAll(async () => {
    await context?.close().catch(() => undefined);
    await host?.stop();
    await db?.drop();
    for (const dir of [dataDir, profileDir]) if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** A fresh tab that records Content-Security-Policy violations (the app must cause none). */
  const newPage = async (): Promise<Page> => {
    const page = await context.newPage();
    page.setDefaultTimeout(15_000);
    page.on('console', (m) => {
      if (/Content.Security.Policy/i.test(m.text())) cspViolations.push(m.text());
    });
    return page;
  };

  const signIn = async (page: Page, creds: { email: string; password: string }): Promise<void> => {
    // A fresh sign-in page: the previous user's refresh cookie would otherwise resume their session.
    await context.clearCookies();
    await page.goto(`${base}/console/`);
    await page.getByLabel('Email').fill(creds.email);
    await page.locator('input[type="password"]').fill(creds.password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('button', { name: 'Sign out' }).waitFor();
  };

  /** In-app navigation (a full page load would resume the session from the cookie, but costs a refresh). */
  const go = async (page: Page, linkName: string): Promise<void> => {
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: linkName, exact: true }).click();
  };
  const goPath = async (page: Page, to: string): Promise<void> => {
    // Browser-side code is passed as text throughout: this file is type-checked without the DOM library.
    await page.evaluate(
      `window.history.pushState(null, '', ${JSON.stringify(`/console${to}`)}); window.dispatchEvent(new PopStateEvent('popstate'))`,
    );
  };

  /** axe-core on the page as it is now: no serious or critical violation; a screenshot beside it. */
  const check = async (page: Page, name: string): Promise<void> => {
    // Polled from here: waitForFunction with a string would need eval in the page, which the CSP refuses.
    await pollUntil(async () => (await page.locator('[role="status"] .mantine-Loader-root').count()) === 0, { what: 'loading to finish' });
    // Evaluated through the DevTools protocol: an injected <script> would (rightly) be refused by the CSP.
    await page.evaluate(AXE_SOURCE);
    const violations: Json[] = await page.evaluate(`axe.run(document, { resultTypes: ['violations'] }).then((r) =>
      r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => n.target.join(' ')).slice(0, 5) })))`);
    await page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true });
    expect({ page: name, violations: violations.filter((v) => v.impact === 'serious' || v.impact === 'critical') }).toEqual({
      page: name,
      violations: [],
    });
  };

  it('serves the app with a strict CSP and small initial JavaScript; the sign-in page is quick to become usable', async () => {
    const res = await fetch(`${base}/console/`);
    expect(res.status).toBe(200);
    const csp = res.headers.get('content-security-policy')!;
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).not.toContain('unsafe-inline');
    expect(csp).not.toContain('unsafe-eval');
    const html = await res.text();
    const nonce = /'nonce-([^']+)'/.exec(csp)![1];
    expect(html).toContain(`content="${nonce}"`);
    // Each load gets its own nonce.
    expect((await fetch(`${base}/console/`)).headers.get('content-security-policy')).not.toContain(nonce);
    // SPA fallback for app routes; files outside the build are never served.
    expect((await fetch(`${base}/console/approvals/123`)).status).toBe(200);
    expect((await fetch(`${base}/console/assets/missing.js`)).status).toBe(404);
    const escape = await fetch(`${base}/console/..%2f..%2fpackage.json`);
    expect(escape.status).toBe(404);
    expect(await escape.text()).not.toContain('devDependencies');

    let jsGzip = 0;
    for (const [, src] of html.matchAll(/<script[^>]+src="([^"]+)"/g)) {
      const body = Buffer.from(await (await fetch(`${base}${src}`)).arrayBuffer());
      jsGzip += gzipSync(body).length;
    }
    // The size is deterministic (unlike timings): the 250 kB gzipped budget is asserted. Admin and
    // agents pages are lazy chunks, not part of it.
    expect(jsGzip).toBeLessThanOrEqual(250 * 1024);
    const page = await newPage();
    const interactive = async (): Promise<number> => {
      const started = Date.now();
      await page.goto(`${base}/console/`);
      await page.getByRole('button', { name: 'Sign in' }).waitFor();
      await page.getByLabel('Email').focus();
      return Date.now() - started;
    };
    const cold = await interactive();
    const warm = await interactive();
    // Measured and reported, not asserted (the budget is 250 kB and 1 s on an idle machine).
    process.stderr.write(
      `console: initial JS ${(jsGzip / 1024).toFixed(1)} kB gzipped; sign-in page interactive in ${cold} ms (first load, cold browser), ${warm} ms (reload)\n`,
    );
    await check(page, '01-sign-in');
    await page.close();
  });

  it('the west rep: no margin column, no East accounts, tokens only in memory, her edit conflict shown', async () => {
    const page = await newPage();
    await signIn(page, demo.rep);
    // The access token is in memory only; the refresh token is an httpOnly cookie script cannot read.
    expect(await page.evaluate('[localStorage.length, sessionStorage.length, document.cookie]')).toEqual([0, 0, '']);
    expect((await context.cookies()).map((c) => [c.name, c.httpOnly])).toEqual([['custodian_refresh', true]]);
    await check(page, '02-approvals-inbox-rep');

    await go(page, 'Opportunities');
    await page.getByRole('link', { name: 'Acme renewal' }).waitFor();
    const headers = await page.getByRole('columnheader').allInnerTexts();
    expect(headers.join(' ')).toContain('amount');
    expect(headers.join(' ')).not.toContain('margin');
    await check(page, '03-records-opportunities-rep');

    await go(page, 'Accounts');
    await page.getByRole('link', { name: 'Acme West' }).waitFor();
    await page.getByRole('link', { name: 'Initech' }).waitFor();
    expect(await page.getByRole('link', { name: 'Globex' }).count()).toBe(0);
    await check(page, '04-records-accounts-rep');

    // Filtering happens on the server, on readable fields only.
    await page.getByRole('textbox', { name: 'Value' }).fill('Init');
    await page.getByRole('button', { name: 'Apply' }).click();
    await pollUntil(async () => (await page.getByRole('link', { name: 'Acme West' }).count()) === 0, { what: 'the filter' });
    await page.getByRole('link', { name: 'Initech' }).waitFor();

    await go(page, 'Opportunities');
    await page.getByRole('link', { name: 'Acme renewal' }).click();
    await page.getByRole('button', { name: 'Edit' }).click();
    await check(page, '05-record-edit-rep');
    // Someone saves first (the rep herself, from another client).
    const rep = await token(demo.rep);
    const list = await api('POST', '/query', rep, { object: 'opportunity', where: { name: 'Acme renewal' } });
    const renewal = list.body.items[0];
    expect(
      (await api('PATCH', `/data/opportunity/${renewal.id}`, rep, { stage: 'negotiation' }, { 'if-match': `"${renewal.version}"` })).status,
    ).toBe(200);
    await page.getByRole('textbox', { name: 'name' }).fill('Acme renewal (2 years)');
    await page.getByRole('button', { name: 'Save' }).click();
    const conflict = page.getByTestId('edit-conflict');
    await conflict.waitFor();
    expect(await conflict.innerText()).toContain('negotiation');
    expect(await page.getByTestId('problem-code').innerText()).toBe('precondition_failed');
    expect(await page.getByTestId('problem-request-id').innerText()).toMatch(/^[0-9a-f-]{36}$/);
    await check(page, '06-record-conflict-rep');
    // Nothing was written by the refused save.
    expect((await api('GET', `/data/opportunity/${renewal.id}`, rep)).body.name).toBe('Acme renewal');

    await page.getByRole('button', { name: 'Edit on top of the current version' }).click();
    await page.getByRole('button', { name: 'Save' }).click();
    await page.getByText('Saved.').waitFor();
    // The record's shares come as the one list envelope (`items`, ADR 0018) through the typed client:
    // an empty list or a table, never nothing at all (the page once read `items` of a `{shares}` answer).
    await page
      .getByText('Not shared with anyone.')
      .or(page.getByRole('table', { name: 'Shares' }))
      .waitFor();

    await page.getByRole('button', { name: 'Why can I see this?' }).click();
    await page.getByTestId('explain').waitFor();
    expect(await page.getByTestId('explain').innerText()).toContain('Allowed');
    await check(page, '07-record-explain-rep');

    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('button', { name: 'Sign in' }).waitFor();
    await page.close();
  });

  it("the VP sees an agent's pending change arrive, reviews the diff, approves, and the record updates", async () => {
    const page = await newPage();
    await signIn(page, demo.vp);
    await page.getByRole('heading', { name: 'Approvals' }).waitFor();

    const rep = await token(demo.rep);
    // The rep renamed it in the test before ("Acme renewal (2 years)").
    const renewal = (await api('POST', '/query', rep, { object: 'opportunity', where: { name: { $startsWith: 'Acme renewal' } } })).body
      .items[0];
    const exchanged = await api('POST', '/auth/token-exchange', undefined, {
      grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
      subject_token: rep,
      subject_token_type: 'urn:ietf:params:oauth:token-type:access_token',
      scope: 'data:read data:write',
      client_id: 'crm-assistant',
      agent_name: 'CRM assistant',
    });
    expect(exchanged.status).toBe(200);
    const filed = await api('POST', '/approvals', exchanged.body.access_token, {
      kind: 'record.update',
      object: 'opportunity',
      recordId: renewal.id,
      values: { amount: 15000 },
      justification: 'Customer confirmed the larger order in today’s call',
      context: { conversationId: 'c-17', toolCallId: 't-3', recordsRead: [{ object: 'opportunity', id: renewal.id }] },
    });
    expect(filed.status).toBe(201);

    // The inbox polls: the new action appears without a reload.
    const link = page.getByRole('link', { name: 'record.update on opportunity' });
    await link.waitFor({ timeout: 20_000 });
    await check(page, '08-approvals-inbox-vp');
    await link.click();
    const diff = page.getByTestId('approval-diff');
    await diff.waitFor();
    const amountRow = diff.locator('tr[data-field="amount"]');
    expect(await amountRow.innerText()).toMatch(/amount\s+12000\s+15000/);
    expect(await page.getByLabel('Agent context').innerText()).toContain('c-17');
    await check(page, '09-approval-diff-vp');
    await page.screenshot({ path: path.join(ARTIFACTS, 'approval-diff.png') });

    await page.getByRole('button', { name: 'Approve' }).click();
    // The apply follows the last approval at once; the page shows "approved" or already "applied".
    await pollUntil(async () => ['approved', 'applied'].includes((await page.getByTestId('approval-state').innerText()).toLowerCase()), {
      what: 'the decision',
      timeoutMs: 15_000,
    }).catch(async (error: Error) => {
      throw new Error(`${error.message}; the page says: ${await page.getByRole('main').innerText()}`);
    });
    await page.getByRole('link', { name: renewal.id }).click();
    await page.locator('td[data-field="amount"]').waitFor();
    expect(await page.locator('td[data-field="amount"]').innerText()).toBe('15000');
    expect((await api('GET', `/data/opportunity/${renewal.id}`, rep)).body.amount).toBe(15000);
    const vp = await token(demo.vp);
    process.stderr.write(`console: approved action state now ${(await api('GET', `/approvals/${filed.body.id}`, vp)).body.state}\n`);
    await check(page, '10-record-after-approval-vp');
    await page.close();
  });

  it('the finance user has no Accounts page but sees the margin; an unknown record shows its problem code and request id', async () => {
    const page = await newPage();
    await signIn(page, demo.finance);
    const nav = page.getByRole('navigation', { name: 'Main' });
    await nav.getByRole('link', { name: 'Opportunities' }).waitFor();
    expect(await nav.getByRole('link', { name: 'Accounts' }).count()).toBe(0);
    await go(page, 'Opportunities');
    await page.getByRole('link', { name: 'Globex expansion' }).waitFor();
    expect((await page.getByRole('columnheader').allInnerTexts()).join(' ')).toContain('margin');
    await check(page, '11-records-opportunities-finance');

    await goPath(page, '/records/account');
    await page.getByRole('heading', { name: 'Not found' }).waitFor();
    await goPath(page, `/records/opportunity/${randomUUID()}`);
    await page.getByTestId('problem-code').waitFor();
    expect(await page.getByTestId('problem-code').innerText()).toBe('not_found');
    expect(await page.getByTestId('problem-request-id').innerText()).toMatch(/^[0-9a-f-]{36}$/);
    await check(page, '12-problem-finance');

    await page.getByRole('link', { name: 'finance@demo.custodian.local' }).click();
    await page.getByRole('heading', { name: 'Who am I' }).waitFor();
    expect(await page.getByTestId('me-email').innerText()).toBe(demo.finance.email);
    await check(page, '13-who-am-i-finance');
    await page.close();
  });

  it('an auditor searches the log, opens an event, verifies the chain and exports', async () => {
    const admin = await token(ADMIN);
    const auditor = { email: 'auditor@console.test', password: 'auditor-password-1234' };
    const created = await api('POST', '/users', admin, {
      email: auditor.email,
      displayName: 'Audra (Auditor)',
      password: auditor.password,
    });
    expect(created.status).toBe(201);
    const me = await api('GET', '/auth/me', admin);
    expect((await api('PATCH', `/orgs/${me.body.orgId}/members/${created.body.id}`, admin, { capabilities: ['view_audit'] })).status).toBe(
      200,
    );

    const page = await newPage();
    await signIn(page, auditor);
    const nav = page.getByRole('navigation', { name: 'Main' });
    expect(await nav.getByRole('link', { name: 'Users' }).count()).toBe(0);
    await go(page, 'Audit log');
    await page.getByRole('table', { name: 'Audit events' }).waitFor();
    await check(page, '14-audit-auditor');

    await page.getByRole('textbox', { name: 'Event type' }).fill('auth.login');
    await page.getByRole('button', { name: 'Search' }).click();
    const logins = page.getByRole('link', { name: 'auth.login' });
    await logins.first().waitFor();
    expect(await page.getByRole('link', { name: 'objects.record.created' }).count()).toBe(0);
    await logins.first().click();
    await page.getByRole('heading', { name: 'Event auth.login' }).waitFor();
    await check(page, '15-audit-event-auditor');

    await go(page, 'Audit log');
    await page.getByRole('button', { name: 'Verify chain' }).click();
    const result = page.getByTestId('verify-result');
    await result.waitFor({ timeout: 30_000 });
    expect(await result.innerText()).toContain('Chain verified');
    const download = page.waitForEvent('download');
    await page.getByRole('button', { name: 'Export (NDJSON)' }).click();
    expect((await download).suggestedFilename()).toMatch(/^audit-export-.*\.ndjson$/);
    await page.getByText(/events exported/).waitFor();
    await check(page, '16-audit-verified-auditor');
    await page.close();
  });

  it('caused no Content-Security-Policy violation on any page', () => {
    expect(cspViolations).toEqual([]);
  });
});
