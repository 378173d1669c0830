import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CustodianClient } from '../../packages/client/src';
import { runCli, type Ran } from '../support/cli-process';
import { TEST_ADMIN, startTestHost, type TestHost } from '../support/host';

/** The built `custodian` command (npm run build) against an all-in-one, as an operator runs it. */
describe('custodian CLI (built, spawned)', () => {
  let t: TestHost;
  let home: string;
  const masterKey = randomBytes(32).toString('base64');

  const cli = (args: string[], opts: { input?: string; env?: Record<string, string> } = {}): Promise<Ran> =>
    runCli(args, { home, ...opts });

  beforeAll(async () => {
    home = mkdtempSync(path.join(tmpdir(), 'custodian-cli-home-'));
    t = await startTestHost('cli', { CUSTODIAN_MASTER_KEY: masterKey });
  });

  afterAll(async () => {
    await t?.stop();
    rmSync(home, { recursive: true, force: true });
  });

  it('login reads the password from stdin and stores the token in ~/.config/custodian/credentials (0600)', async () => {
    const r = await cli(['login', '--url', t.host.url, '--email', TEST_ADMIN.email], { input: `${TEST_ADMIN.password}\n` });
    expect(r).toMatchObject({ code: 0 });
    expect(r.stderr).toContain(`signed in to ${t.host.url}`);
    const file = path.join(home, '.config', 'custodian', 'credentials');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(statSync(path.dirname(file)).mode & 0o777).toBe(0o700);
    const stored = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
    expect(stored).toMatchObject({ url: t.host.url, email: TEST_ADMIN.email, accessToken: expect.any(String) });
    expect(JSON.stringify(stored)).not.toContain(TEST_ADMIN.password);
    // The stored token is a working credential for the typed client too.
    const me = await new CustodianClient({ baseUrl: t.host.url, token: String(stored.accessToken) }).authMe();
    expect(me.orgId).toBe(stored.orgId);
  });

  it('a wrong password is the problem code with the request id, exit 1', async () => {
    const r = await cli(['login', '--url', t.host.url, '--email', TEST_ADMIN.email], { input: 'not-the-password\n' });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/error: invalid_credentials \(HTTP 401\)/);
    expect(r.stderr).toMatch(/request id: \S+/);
  });

  it('lists users with the stored login', async () => {
    const r = await cli(['users', 'list']);
    expect(r.code).toBe(0);
    const page = JSON.parse(r.stdout) as { items: Array<{ email: string }> };
    expect(page.items.map((u) => u.email)).toContain(TEST_ADMIN.email);
  });

  it('creates an API key (shown once) that works as CUSTODIAN_TOKEN, lists it, revokes it; the revoked key is refused', async () => {
    const created = await cli(['api-keys', 'create', '--name', 'cli key', '--scope', 'api_access']);
    expect(created.code).toBe(0);
    const key = JSON.parse(created.stdout) as { id: string; key: string };
    expect(key.key.length).toBeGreaterThan(20);
    expect(created.stderr).toContain('shown once');
    // The new key works as CUSTODIAN_TOKEN.
    const whoami = await cli(['whoami', '--url', t.host.url], { env: { CUSTODIAN_TOKEN: key.key } });
    expect(whoami.code).toBe(0);
    const revoked = await cli(['api-keys', 'revoke', key.id]);
    expect(revoked).toMatchObject({ code: 0 });
    const listed = JSON.parse((await cli(['api-keys', 'list'])).stdout) as { items: Array<{ id: string; revokedAt: string | null }> };
    expect(listed.items.find((k) => k.id === key.id)?.revokedAt).toEqual(expect.any(String));
    const again = await cli(['whoami', '--url', t.host.url], { env: { CUSTODIAN_TOKEN: key.key } });
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('unauthenticated');
  });

  it('lists the approvals queue', async () => {
    const r = await cli(['approvals', 'list', '--limit', '10']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ items: expect.any(Array) });
  });

  it('settings set reads a secret from stdin; the answer and the list never show it', async () => {
    const secret = `sk-${randomBytes(12).toString('hex')}`;
    const r = await cli(['settings', 'set', 'model.api_key'], { input: `${secret}\n` });
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
    expect(r.stdout).not.toContain(secret);
    expect(JSON.parse(r.stdout)).toMatchObject({ name: 'model.api_key', secret: { set: true } });
    const list = await cli(['settings', 'list']);
    expect(list.stdout).not.toContain(secret);
    const number = await cli(['settings', 'set', 'model.timeout_ms'], { input: '45000\n' });
    expect(JSON.parse(number.stdout)).toMatchObject({ name: 'model.timeout_ms', value: 45000 });
    const bad = await cli(['settings', 'set', 'model.timeout_ms'], { input: 'soon\n' });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('validation_failed');
  });

  it('bundle apply creates, diff shows no change afterwards, export gives a document that diffs clean', async () => {
    const file = path.join(home, 'bundle.yaml');
    writeFileSync(
      file,
      [
        'apiVersion: custodian.dev/v1',
        'kind: Bundle',
        'name: cli-test',
        'roles: [{ name: cli_parent }, { name: cli_child, parent: cli_parent }]',
        'groups: [{ name: cli_group, description: made by the CLI test }]',
        '',
      ].join('\n'),
    );
    const applied = await cli(['bundle', 'apply', file]);
    expect({ code: applied.code, stderr: applied.stderr }).toEqual({ code: 0, stderr: '' });
    expect((JSON.parse(applied.stdout) as { changes: Array<{ change: string }> }).changes.map((c) => c.change)).toEqual([
      'create',
      'create',
      'create',
    ]);
    const diff = await cli(['bundle', 'diff', file]);
    expect(diff.code).toBe(0);
    expect(diff.stderr).toContain('0 change(s), 3 unchanged');
    const exported = await cli(['bundle', 'export', '--output', path.join(home, 'export.yaml')]);
    expect({ code: exported.code }).toEqual({ code: 0 });
    const again = await cli(['bundle', 'diff', path.join(home, 'export.yaml')]);
    expect({ code: again.code, stderr: again.stderr }).toMatchObject({
      code: 0,
      stderr: expect.stringMatching(/^0 change\(s\), \d+ unchanged/),
    });
  });

  it('bundle apply and export --progress draw a bar on stderr (a line per step into a log); stdout stays the clean result', async () => {
    const file = path.join(home, 'progress.yaml');
    writeFileSync(
      file,
      ['apiVersion: custodian.dev/v1', 'kind: Bundle', 'name: cli-progress', 'groups: [{ name: cli_progress }]', ''].join('\n'),
    );
    const applied = await cli(['bundle', 'apply', file, '--progress']);
    expect(applied.code).toBe(0);
    expect((JSON.parse(applied.stdout) as { changes: Array<{ change: string }> }).changes.map((c) => c.change)).toEqual(['create']);
    const steps = applied.stderr.split('\n').filter(Boolean);
    expect(steps).toHaveLength(3);
    expect(steps[0]).toMatch(/^bundle apply \[\.+\] {3}0% 0\/2 steps \d+ steps\/s read /);
    expect(steps[0].endsWith(` read ${file} (${readFileSync(file).length} bytes)`)).toBe(true);
    expect(steps[1]).toMatch(/^bundle apply \[#+\.+\] {2}50% 1\/2 steps .* server: applying$/);
    expect(steps[2]).toMatch(/^bundle apply \[#+\] 100% 2\/2 steps .* 1 change\(s\), 0 unchanged$/);
    expect(applied.stderr).not.toContain('\r');

    const exported = await cli(['bundle', 'export', '--progress']);
    expect(exported.code).toBe(0);
    expect(exported.stdout).toMatch(/^apiVersion: custodian\.dev\/v1\n/);
    expect(exported.stdout).not.toContain('bundle export [');
    const lines = exported.stderr.split('\n').filter(Boolean);
    expect(lines[0]).toMatch(/^bundle export \[[#.]+\] +\d+% 1\/\d+ requests .* objects$/);
    expect(lines.at(-2)).toMatch(/^bundle export \[#+\] 100% (\d+)\/\1 requests .* approval policies$/);
    expect(lines.at(-1)).toMatch(/^exported \d+ objects, \d+ roles, \d+ groups/);

    // Without --progress and without a terminal: no bar at all.
    const quiet = await cli(['bundle', 'export']);
    expect(quiet.stderr).toMatch(/^exported \d+ objects[^\n]*\n$/);
  });

  it('bad arguments print the usage and exit 2', async () => {
    const r = await cli(['approvals', 'approve']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('Usage: custodian approvals');
  });

  it('doctor checks config, database, bus, clock and key material; a database it cannot reach fails it', async () => {
    const env = { DATABASE_URL: t.db.url, NATS_URL: 'nats://127.0.0.1:4222', CUSTODIAN_MASTER_KEY: masterKey, CUSTODIAN_DATA_DIR: home };
    const ok = await cli(['doctor', '--url', t.host.url], { env });
    expect(ok.stderr).toBe('');
    expect(ok.code).toBe(0);
    for (const check of ['config', 'database', 'bus', 'server', 'clock', 'keys'])
      expect(ok.stdout).toMatch(new RegExp(`^ok\\s+${check}\\b`, 'm'));
    const down = await cli(['doctor', '--url', t.host.url], { env: { ...env, DATABASE_URL: 'postgres://postgres@127.0.0.1:9/none' } });
    expect(down.code).toBe(1);
    expect(down.stdout).toMatch(/^fail\s+database\s+unreachable/m);
  });
});
