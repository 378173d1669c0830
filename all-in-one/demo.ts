import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';

/** The demo bundle, looked up from the source tree or from dist/ (both keep apps/objects/bundles). */
export function findDemoBundle(from = __dirname): string | undefined {
  for (let dir = from; ; dir = path.dirname(dir)) {
    const file = path.join(dir, 'apps', 'objects', 'bundles', 'demo-crm.yaml');
    if (existsSync(file)) return file;
    if (path.dirname(dir) === dir) return undefined;
  }
}

/** `CUSTODIAN_DEMO=false` (or 0/no/off) turns the first-start demo off; it is on by default. */
export function demoEnabled(env: Record<string, string | undefined>): boolean {
  return !/^(false|0|no|off)$/i.test(env.CUSTODIAN_DEMO ?? '');
}

interface DemoUser {
  key: 'vp' | 'rep' | 'finance';
  email: string;
  displayName: string;
  role?: string;
  groups: string[];
  sets: string[];
  about: string;
}

export const DEMO_USERS: readonly DemoUser[] = [
  {
    key: 'vp',
    email: 'vp@demo.custodian.local',
    displayName: 'Vera (VP of Sales)',
    role: 'vp_sales',
    groups: [],
    sets: ['Sales Rep', 'Sales Manager'],
    about: 'VP of Sales: her records and everything below her role, with margins',
  },
  {
    key: 'rep',
    email: 'west.rep@demo.custodian.local',
    displayName: 'Wes (West rep)',
    role: 'rep_west',
    groups: ['west_team'],
    sets: ['Sales Rep'],
    about: 'West rep: own records + West accounts (read), never the margin',
  },
  {
    key: 'finance',
    email: 'finance@demo.custodian.local',
    displayName: 'Fran (Finance)',
    groups: [],
    sets: ['Sales Finance'],
    about: 'Finance: every opportunity with its margin, read only; no accounts',
  },
];

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- answers of our own API
type Json = any;

/** A small client for the in-process HTTP API; retries the replica's 503 (R10) while it catches up. */
function client(base: string) {
  return async (method: string, route: string, token: string | undefined, body?: unknown, headers: Record<string, string> = {}) => {
    for (let attempt = 0; ; attempt++) {
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
      if (res.status === 503 && attempt < 20) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        continue;
      }
      if (!res.ok) throw new Error(`${method} ${route}: ${res.status} ${text.slice(0, 500)}`);
      return (text ? JSON.parse(text) : undefined) as Json;
    }
  };
}

/**
 * First start of the all-in-one: applies the demo CRM bundle as the admin, creates three demo users
 * with generated passwords, and seeds records they own, all through the public HTTP API (the same
 * checks and audit trail as any client). Answers the banner lines naming the users.
 */
export async function seedDemo(base: string, admin: { email: string; password: string }, logger: Logger): Promise<string[]> {
  const file = findDemoBundle();
  if (!file) throw new Error('demo bundle apps/objects/bundles/demo-crm.yaml not found');
  const call = client(base);
  const login = async (email: string, password: string): Promise<string> =>
    (await call('POST', '/auth/login', undefined, { email, password })).accessToken as string;
  const adminToken = await login(admin.email, admin.password);
  const applied = await call('POST', '/bundles/apply', adminToken, { document: readFileSync(file, 'utf8'), dryRun: false });
  logger.info({ changes: applied.changes.length }, 'demo bundle applied');

  const byName = async (route: string): Promise<Map<string, string>> =>
    new Map((await call('GET', `${route}?limit=200`, adminToken)).items.map((x: Json) => [x.name, x.id]));
  const [roles, groups, sets] = await Promise.all([byName('/roles'), byName('/groups'), byName('/permission-sets')]);
  const passwords = new Map<string, string>();
  const tokens = new Map<DemoUser['key'], string>();
  for (const user of DEMO_USERS) {
    const password = randomBytes(15).toString('base64url');
    const created = await call('POST', '/users', adminToken, {
      email: user.email,
      displayName: user.displayName,
      password,
      ...(user.role ? { roleId: roles.get(user.role) } : {}),
    });
    for (const g of user.groups) await call('POST', `/groups/${groups.get(g)}/members`, adminToken, { userId: created.id });
    for (const s of user.sets) await call('POST', `/permission-sets/${sets.get(s)}/assignments`, adminToken, { userId: created.id });
    passwords.set(user.email, password);
    tokens.set(user.key, await login(user.email, password));
  }

  // Records that make the rules visible: the rep's own West account and deal, the VP's West and
  // East accounts and a deal with its (sensitive) margin; the VP also prices the rep's deal.
  const rep = tokens.get('rep')!;
  const vp = tokens.get('vp')!;
  const acme = await call('POST', '/data/account', rep, { name: 'Acme West', region: 'west', industry: 'Manufacturing' });
  await call('POST', '/data/contact', rep, { name: 'Ana Alvarez', email: 'ana@acme.example', account: acme.id });
  const renewal = await call('POST', '/data/opportunity', rep, {
    name: 'Acme renewal',
    account: acme.id,
    amount: 12000,
    stage: 'proposal',
  });
  await call('POST', '/data/account', vp, { name: 'Initech', region: 'west', industry: 'Software' });
  const globex = await call('POST', '/data/account', vp, { name: 'Globex', region: 'east', industry: 'Energy' });
  await call('POST', '/data/opportunity', vp, {
    name: 'Globex expansion',
    account: globex.id,
    amount: 50000,
    margin: 0.32,
    stage: 'negotiation',
  });
  await call('PATCH', `/data/opportunity/${renewal.id}`, vp, { margin: 0.25 }, { 'if-match': `"${renewal.version}"` });

  const width = Math.max(...DEMO_USERS.map((u) => u.email.length));
  return [
    ' Demo CRM loaded (CUSTODIAN_DEMO=false skips it). Demo users, passwords shown once:',
    ...DEMO_USERS.map((u) => `   ${u.email.padEnd(width)}  ${passwords.get(u.email)}  ${u.about}`),
  ];
}
