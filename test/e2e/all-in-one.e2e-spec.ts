import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CustodianApiError, type CustodianClient } from '../../packages/client/src';
import { typedClient, type Json } from '../support/api';
import { freePort } from '../support/free-port';
import { pollUntil } from '../support/poll';
import { startProcess, type ServiceProcess } from '../support/process';

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

  // The API is called through the typed client (packages/client): a drift between the server and
  // the generated client fails here. A refused call throws CustodianApiError.
  /** Signs in and answers the typed client as that user. */
  const signIn = async (url: string, creds: { email: string; password: string }): Promise<CustodianClient> =>
    typedClient(url, (await typedClient(url).authLogin({ body: creds })).accessToken);
  /** The rows of an ObjectQL answer (a list, not an aggregate). */
  const rowsOf = (res: object): Json[] => {
    expect(res).toHaveProperty('items');
    return (res as { items: Json[] }).items;
  };
  /** What the installation holds, as the admin and the VP see it (must not grow on restart). */
  const snapshot = async (url: string): Promise<Json> => {
    const admin = await signIn(url, credentials);
    const vp = await signIn(url, demo.vp);
    const page = { query: { limit: '200' } };
    const names = (items: Array<{ name: string }>): string[] => items.map((x) => x.name).sort();
    return {
      users: (await admin.usersList(page)).items.map((u) => u.email).sort(),
      roles: names((await admin.rolesList(page)).items),
      groups: names((await admin.groupsList(page)).items),
      sets: names((await admin.permissionSetsList(page)).items),
      objects: (await admin.objectMetadataList()).items.map((o) => o.name),
      actions: (await admin.actionsList({ name: 'opportunity' })).items.map((a) => a.name),
      policies: (await admin.approvalPoliciesList()).items.map((p) => p.name),
      accounts: rowsOf(await vp.recordsQuery({ body: { object: 'account', orderBy: [{ field: 'name' }] } })).map((r) => r.id),
      opportunities: rowsOf(await vp.recordsQuery({ body: { object: 'opportunity' } })).length,
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

    const admin = await signIn(url, credentials);
    await admin.objectMetadataList();
    expect(admin.lastStatus).toBe(200);
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
    const as = {
      vp: await signIn(url, demo.vp),
      rep: await signIn(url, demo.rep),
      finance: await signIn(url, demo.finance),
    };
    /** The same read twice: the REST list and ObjectQL, each answering its rows. */
    const both = async (who: CustodianClient, object: string): Promise<Json[][]> => [
      (await who.recordsList({ object, query: { orderBy: 'name' } })).items,
      rowsOf(await who.recordsQuery({ body: { object, orderBy: [{ field: 'name' }] } })),
    ];
    const view = (rows: Json[]): Array<[string, unknown]> =>
      rows.map((r) => [r.name, 'margin' in r ? r.margin : 'hidden'] as [string, unknown]);

    // West rep: own account + Initech (West, shared with west_team by the criteria rule), not Globex (East)
    for (const rows of await both(as.rep, 'account')) expect(rows.map((r) => r.name)).toEqual(['Acme West', 'Initech']);
    // … own opportunity only, and never the sensitive margin
    for (const rows of await both(as.rep, 'opportunity')) expect(view(rows)).toEqual([['Acme renewal', 'hidden']]);
    // VP: everything below her in the role tree, with margins (Sales Manager names the field)
    for (const rows of await both(as.vp, 'account')) expect(rows.map((r) => r.name)).toEqual(['Acme West', 'Globex', 'Initech']);
    for (const rows of await both(as.vp, 'opportunity')) {
      expect(view(rows)).toEqual([
        ['Acme renewal', 0.25],
        ['Globex expansion', 0.32],
      ]);
    }
    // Finance: every opportunity with its margin (view all), read only; no accounts at all
    for (const rows of await both(as.finance, 'opportunity')) {
      expect(view(rows)).toEqual([
        ['Acme renewal', 0.25],
        ['Globex expansion', 0.32],
      ]);
    }
    for (const read of [
      as.finance.recordsList({ object: 'account' }),
      as.finance.recordsQuery({ body: { object: 'account', orderBy: [{ field: 'name' }] } }),
    ]) {
      const refused = await read.then(
        () => undefined,
        (error: unknown) => error,
      );
      expect(refused).toBeInstanceOf(CustodianApiError);
      expect([403, 404]).toContain((refused as CustodianApiError).status);
    }
    const [opp] = (await both(as.finance, 'opportunity'))[1];
    await expect(
      as.finance.recordsUpdate({ object: 'opportunity', id: opp.id, body: { amount: 1 }, headers: { 'if-match': `"${opp.version}"` } }),
    ).rejects.toMatchObject({ status: 403 });
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
    await signIn(url, credentials);
  });
});
