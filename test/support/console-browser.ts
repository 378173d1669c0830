import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { startAllInOne, type AllInOne } from '../../all-in-one/all-in-one';
import { createTestDatabase, type TestDatabase } from './database';
import { pollUntil } from './poll';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- API answers are checked field by field
export type Json = any;

export const CONSOLE_ADMIN = { email: 'admin@console.test', password: 'correct-horse-battery-staple' };
export const ARTIFACTS = path.resolve(__dirname, '..', '..', 'test-artifacts', 'console');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const AXE_SOURCE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

export type Creds = { email: string; password: string };

/**
 * The console's browser tests: the all-in-one with the demo loaded on a fresh database, Debian's
 * chromium (headless, a persistent profile so cookies behave as in a real browser), and the steps
 * every page test uses — sign in, navigate in the app, axe-core plus a screenshot.
 */
export interface ConsoleBrowser {
  base: string;
  host: AllInOne;
  db: TestDatabase;
  context: BrowserContext;
  demo: Record<'vp' | 'rep' | 'finance', Creds>;
  /** CSP violations any page reported (the app must cause none). */
  cspViolations: string[];
  api(
    method: string,
    route: string,
    token?: string,
    body?: unknown,
    headers?: Record<string, string>,
  ): Promise<{ status: number; body: Json }>;
  token(creds: Creds): Promise<string>;
  newPage(): Promise<Page>;
  /** Signs in from a fresh sign-in page (the browser's refresh cookie is dropped first). */
  signIn(page: Page, creds: Creds): Promise<void>;
  /** A link of the main navigation. */
  go(page: Page, linkName: string): Promise<void>;
  /** In-app navigation to a path (no reload). */
  goPath(page: Page, to: string): Promise<void>;
  /** axe-core: no serious or critical violation; a screenshot `<name>.png` beside it. */
  check(page: Page, name: string): Promise<void>;
  stop(): Promise<void>;
}

export async function startConsoleBrowser(prefix: string, env: Record<string, string> = {}): Promise<ConsoleBrowser> {
  const db = await createTestDatabase(prefix, { migrated: true });
  const dataDir = mkdtempSync(path.join(tmpdir(), 'custodian-console-'));
  const host = await startAllInOne(
    {
      DATABASE_URL: db.url,
      PORT: '0',
      HOST: '127.0.0.1',
      CUSTODIAN_DATA_DIR: dataDir,
      CUSTODIAN_MASTER_KEY: randomBytes(32).toString('base64'),
      CUSTODIAN_ADMIN_EMAIL: CONSOLE_ADMIN.email,
      CUSTODIAN_ADMIN_PASSWORD: CONSOLE_ADMIN.password,
      LOG_LEVEL: 'silent',
      CUSTODIAN_SHUTDOWN_GRACE_MS: '2000',
      ...env,
    },
    { demo: true },
  );
  const base = host.url;
  const banner = readFileSync(path.join(dataDir, 'initial-credentials.txt'), 'utf8');
  const user = (email: string): Creds => ({
    email,
    password: new RegExp(`^\\s+${email.replace(/\./g, '\\.')}\\s+(\\S+)\\s`, 'm').exec(banner)![1]!,
  });
  mkdirSync(ARTIFACTS, { recursive: true });
  const profileDir = mkdtempSync(path.join(tmpdir(), 'custodian-chromium-'));
  const context = await chromium.launchPersistentContext(profileDir, {
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
  const cspViolations: string[] = [];

  const api: ConsoleBrowser['api'] = async (method, route, token, body, headers = {}) => {
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

  return {
    base,
    host,
    db,
    context,
    demo: {
      vp: user('vp@demo.custodian.local'),
      rep: user('west.rep@demo.custodian.local'),
      finance: user('finance@demo.custodian.local'),
    },
    cspViolations,
    api,
    async token(creds) {
      const res = await api('POST', '/auth/login', undefined, creds);
      if (res.status !== 200) throw new Error(`login ${creds.email}: ${res.status} ${JSON.stringify(res.body)}`);
      return res.body.accessToken as string;
    },
    async newPage() {
      const page = await context.newPage();
      page.setDefaultTimeout(20_000);
      page.on('console', (m) => {
        if (/Content.Security.Policy/i.test(m.text())) cspViolations.push(m.text());
      });
      return page;
    },
    async signIn(page, creds) {
      await context.clearCookies();
      await page.goto(`${base}/console/`);
      await page.getByLabel('Email').fill(creds.email);
      await page.locator('input[type="password"]').fill(creds.password);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.getByRole('button', { name: 'Sign out' }).waitFor();
    },
    async go(page, linkName) {
      await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: linkName, exact: true }).click();
    },
    async goPath(page, to) {
      // Browser-side code is passed as text: this file is type-checked without the DOM library.
      await page.evaluate(
        `window.history.pushState(null, '', ${JSON.stringify(`/console${to}`)}); window.dispatchEvent(new PopStateEvent('popstate'))`,
      );
    },
    async check(page, name) {
      await pollUntil(async () => (await page.locator('[role="status"] .mantine-Loader-root').count()) === 0, {
        what: 'loading to finish',
        timeoutMs: 30_000,
      });
      // Through the DevTools protocol: an injected <script> would (rightly) be refused by the CSP.
      await page.evaluate(AXE_SOURCE);
      const violations: Json[] = await page.evaluate(`axe.run(document, { resultTypes: ['violations'] }).then((r) =>
        r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => n.target.join(' ')).slice(0, 5) })))`);
      await page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true });
      const serious = violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
      if (serious.length > 0) throw new Error(`axe on ${name}: ${JSON.stringify(serious, null, 2)}`);
    },
    async stop() {
      await context.close().catch(() => undefined);
      await host.stop();
      await db.drop();
      for (const dir of [dataDir, profileDir]) rmSync(dir, { recursive: true, force: true });
    },
  };
}
