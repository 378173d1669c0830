import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { freePort } from '../support/free-port';
import { pollUntil } from '../support/poll';
import { startProcess, type ServiceProcess } from '../support/process';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- response bodies are asserted field by field
type Json = any;

/**
 * The newcomer's path, as `npm start` runs it: one process, embedded PostgreSQL under the data
 * directory, in-process bus, admin and demo-user credentials printed once, the demo CRM loaded,
 * everything kept across restarts.
 */
describe('all-in-one with embedded PostgreSQL', () => {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'custodian-aio-'));
  let pgPort: number;
  let proc: ServiceProcess | undefined;
  let credentials: { email: string; password: string };
  let demo: Record<'vp' | 'rep' | 'finance', { email: string; password: string }>;
  let firstCounts: Json;

  const api = async (
    url: string,
    method: string,
    route: string,
    token?: string,
    body?: unknown,
  ): Promise<{ status: number; body: Json }> => {
    const res = await fetch(`${url}/api/v1${route}`, {
      method,
      headers: {
        ...(token ? { authorization: `Bearer ${token}` } : {}),
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined };
  };
  const signIn = async (url: string, creds: { email: string; password: string }): Promise<string> => {
    const res = await api(url, 'POST', '/auth/login', undefined, creds);
    expect(res.status).toBe(200);
    return res.body.accessToken as string;
  };
  /** What the installation holds, as the admin and the VP see it (must not grow on restart). */
  const snapshot = async (url: string): Promise<Json> => {
    const admin = await signIn(url, credentials);
    const vp = await signIn(url, demo.vp);
    const names = async (route: string): Promise<string[]> =>
      (await api(url, 'GET', `${route}?limit=200`, admin)).body.items.map((x: Json) => x.name ?? x.email).sort();
    return {
      users: await names('/users'),
      roles: await names('/roles'),
      groups: await names('/groups'),
      sets: await names('/permission-sets'),
      objects: (await api(url, 'GET', '/meta/objects', admin)).body.items.map((o: Json) => o.name),
      actions: (await api(url, 'GET', '/meta/objects/opportunity/actions', admin)).body.items.map((a: Json) => a.name),
      policies: (await api(url, 'GET', '/approvals/policies', admin)).body.items.map((p: Json) => p.name),
      accounts: (await api(url, 'POST', '/query', vp, { object: 'account', orderBy: [{ field: 'name' }] })).body.items.map(
        (r: Json) => r.id,
      ),
      opportunities: (await api(url, 'POST', '/query', vp, { object: 'opportunity' })).body.items.length,
    };
  };

  const start = async (): Promise<{ url: string; readyMs: number }> => {
    const started = Date.now();
    proc = startProcess('dist/all-in-one/main.js', {
      CUSTODIAN_DATA_DIR: dataDir,
      CUSTODIAN_PG_PORT: String(pgPort),
      PORT: '0',
      HOST: '127.0.0.1',
      LOG_LEVEL: 'warn',
    });
    const url = `http://127.0.0.1:${await proc.port()}`;
    await pollUntil(async () => (await fetch(`${url}/health/ready`)).status === 200, { what: 'ready', timeoutMs: 30_000 });
    return { url, readyMs: Date.now() - started };
  };

  beforeAll(async () => {
    pgPort = await freePort();
  });

  afterAll(async () => {
    await proc?.stop('SIGTERM');
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('first start: bootstraps, prints the admin credentials once, and they work', async () => {
    const { url, readyMs } = await start();
    process.stdout.write(`all-in-one cold start (initdb included): ready in ${readyMs} ms\n`);
    // No terminal attached: the banner goes to a file only this user can read, never to the output.
    const file = path.join(dataDir, 'initial-credentials.txt');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const text = readFileSync(file, 'utf8');
    expect(proc!.output.join('\n')).not.toContain('Bootstrap administrator');
    expect(proc!.output.join('\n')).toContain(file);
    const email = /^\s+email\s+(\S+)$/m.exec(text)?.[1];
    const password = /^\s+password\s+(\S+)$/m.exec(text)?.[1];
    expect(email).toBe('admin@custodian.local');
    expect(password).toMatch(/^[A-Za-z0-9_-]{20,}$/);
    credentials = { email: email!, password: password! };
    // The password appears in the banner file only, never in the process output.
    expect(proc!.output.filter((l) => l.includes(password!))).toEqual([]);

    const login = await fetch(`${url}/api/v1/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(credentials),
    });
    expect(login.status).toBe(200);
    const { accessToken } = (await login.json()) as { accessToken: string };
    expect((await fetch(`${url}/api/v1/meta/objects`, { headers: { authorization: `Bearer ${accessToken}` } })).status).toBe(200);
    expect(statSync(path.join(dataDir, 'master.key')).mode & 0o777).toBe(0o600);
  });

  it('first start: the demo CRM and three demo users, printed once in the same banner', async () => {
    const text = readFileSync(path.join(dataDir, 'initial-credentials.txt'), 'utf8');
    const banner = text.slice(text.indexOf('Bootstrap administrator'), text.lastIndexOf('================'));
    const user = (email: string): { email: string; password: string } => {
      const match = new RegExp(`^\\s+${email.replace(/\./g, '\\.')}\\s+(\\S+)\\s`, 'm').exec(banner);
      expect(match).not.toBeNull();
      return { email, password: match![1] };
    };
    demo = {
      vp: user('vp@demo.custodian.local'),
      rep: user('west.rep@demo.custodian.local'),
      finance: user('finance@demo.custodian.local'),
    };
    for (const d of Object.values(demo)) {
      expect(d.password).toMatch(/^[A-Za-z0-9_-]{20}$/);
      expect(proc!.output.filter((l) => l.includes(d.password))).toEqual([]);
    }
    const url = `http://127.0.0.1:${await proc!.port()}`;
    firstCounts = await snapshot(url);
    expect(firstCounts).toMatchObject({
      roles: ['rep_east', 'rep_west', 'vp_sales'],
      groups: ['west_team'],
      sets: ['Sales Finance', 'Sales Manager', 'Sales Rep'],
      objects: ['account', 'contact', 'opportunity'],
      actions: ['mark_lost', 'mark_won'],
      policies: ['Closing and deleting deals'],
      opportunities: 2,
    });
    expect(firstCounts.users).toEqual([
      'admin@custodian.local',
      'finance@demo.custodian.local',
      'vp@demo.custodian.local',
      'west.rep@demo.custodian.local',
    ]);
  });

  it('each demo user sees exactly their records and fields, through REST lists and ObjectQL', async () => {
    const url = `http://127.0.0.1:${await proc!.port()}`;
    const token = {
      vp: await signIn(url, demo.vp),
      rep: await signIn(url, demo.rep),
      finance: await signIn(url, demo.finance),
    };
    const rest = async (t: string, object: string): Promise<Json> => api(url, 'GET', `/data/${object}?orderBy=name`, t);
    const query = async (t: string, object: string): Promise<Json> =>
      api(url, 'POST', '/query', t, { object, orderBy: [{ field: 'name' }] });
    const view = (res: Json): Array<[string, unknown]> =>
      res.body.items.map((r: Json) => [r.name, 'margin' in r ? r.margin : 'hidden'] as [string, unknown]);

    // West rep: own account + Initech (West, shared with west_team by the criteria rule), not Globex (East)
    for (const res of [await rest(token.rep, 'account'), await query(token.rep, 'account')]) {
      expect([res.status, res.body.items.map((r: Json) => r.name)]).toEqual([200, ['Acme West', 'Initech']]);
    }
    // … own opportunity only, and never the sensitive margin
    for (const res of [await rest(token.rep, 'opportunity'), await query(token.rep, 'opportunity')]) {
      expect(view(res)).toEqual([['Acme renewal', 'hidden']]);
    }
    // VP: everything below her in the role tree, with margins (Sales Manager names the field)
    for (const res of [await rest(token.vp, 'account'), await query(token.vp, 'account')]) {
      expect(res.body.items.map((r: Json) => r.name)).toEqual(['Acme West', 'Globex', 'Initech']);
    }
    for (const res of [await rest(token.vp, 'opportunity'), await query(token.vp, 'opportunity')]) {
      expect(view(res)).toEqual([
        ['Acme renewal', 0.25],
        ['Globex expansion', 0.32],
      ]);
    }
    // Finance: every opportunity with its margin (view all), read only; no accounts at all
    for (const res of [await rest(token.finance, 'opportunity'), await query(token.finance, 'opportunity')]) {
      expect(view(res)).toEqual([
        ['Acme renewal', 0.25],
        ['Globex expansion', 0.32],
      ]);
    }
    for (const res of [await rest(token.finance, 'account'), await query(token.finance, 'account')]) {
      expect([403, 404]).toContain(res.status);
    }
    const opp = (await query(token.finance, 'opportunity')).body.items[0];
    const edit = await fetch(`${url}/api/v1/data/opportunity/${opp.id}`, {
      method: 'PATCH',
      headers: { authorization: `Bearer ${token.finance}`, 'content-type': 'application/json', 'if-match': `"${opp.version}"` },
      body: JSON.stringify({ amount: 1 }),
    });
    expect(edit.status).toBe(403);
  });

  it('stops on SIGTERM with exit code 0', async () => {
    expect(await proc!.stop('SIGTERM')).toBe(0);
  });

  it('warm restart: same data, no second banner, nothing created twice, same credentials', async () => {
    rmSync(path.join(dataDir, 'initial-credentials.txt'));
    const { url, readyMs } = await start();
    expect(existsSync(path.join(dataDir, 'initial-credentials.txt'))).toBe(false);
    process.stdout.write(`all-in-one warm start: ready in ${readyMs} ms\n`);
    expect(proc!.output.join('\n')).not.toContain('Bootstrap administrator');
    expect(proc!.output.join('\n')).not.toContain('demo.custodian.local');
    expect(await snapshot(url)).toEqual(firstCounts);
    for (const d of Object.values(demo)) await signIn(url, d);
    const login = await fetch(`${url}/api/v1/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(credentials),
    });
    expect(login.status).toBe(200);
  });
});
