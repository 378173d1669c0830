import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Client as Pg } from 'pg';
import { SettingsCipher } from '@custodian/platform';
import { runCli, type Ran } from '../support/cli-process';
import { createTestDatabase, type TestDatabase } from '../support/database';

interface Row {
  schema: string;
  org_id: string;
  name: string;
  kind: string;
  value: unknown;
  sealed: string | null;
  reference: string | null;
}

/**
 * `custodian settings rotate-key`, the built command (dist/cli/custodian.js) spawned as an operator
 * runs it, against a migrated database holding sealed settings of two orgs: every secret is
 * re-sealed under CUSTODIAN_MASTER_KEY (opens with it, no longer with the previous key), plain
 * values and references are untouched, a wrong previous key changes nothing, a rerun changes nothing.
 */
describe('custodian settings rotate-key (built, spawned)', () => {
  let db: TestDatabase;
  let pg: Pg;
  let home: string;
  const previousKey = randomBytes(32);
  const nextKey = randomBytes(32);
  const previous = new SettingsCipher(previousKey);
  const next = new SettingsCipher(nextKey);
  const orgs = [randomUUID(), randomUUID()];
  /** The plaintext of every sealed agent setting, by `org name`. */
  const secrets = new Map<string, string>();

  const cli = (env: Record<string, string>): Promise<Ran> => runCli(['settings', 'rotate-key'], { home, env });
  const env = (previousBase64: string): Record<string, string> => ({
    DATABASE_URL: db.url,
    CUSTODIAN_MASTER_KEY_PREVIOUS: previousBase64,
    CUSTODIAN_MASTER_KEY: nextKey.toString('base64'),
  });
  const rows = async (schema: 'agent_gateway' | 'identity'): Promise<Row[]> =>
    (
      await pg.query(
        `SELECT $1::text AS schema, org_id, name, kind, value, sealed, reference FROM ${schema}.setting ORDER BY org_id, name`,
        [schema],
      )
    ).rows;
  const insert = (schema: string, orgId: string, name: string, kind: string, v: { value?: unknown; sealed?: string; reference?: string }) =>
    pg.query(`INSERT INTO ${schema}.setting (org_id, name, kind, value, sealed, reference) VALUES ($1, $2, $3, $4, $5, $6)`, [
      orgId,
      name,
      kind,
      v.value === undefined ? null : JSON.stringify(v.value),
      v.sealed ?? null,
      v.reference ?? null,
    ]);

  beforeAll(async () => {
    home = mkdtempSync(path.join(tmpdir(), 'custodian-cli-rotate-'));
    db = await createTestDatabase('cli_rotate', { migrated: true });
    pg = new Pg({ connectionString: db.url });
    await pg.connect();
    for (const [i, orgId] of orgs.entries()) {
      for (const name of ['model.api_key', 'provider.local.api_key']) {
        const plain = `sk-${name}-${i}-${randomBytes(6).toString('hex')}`;
        secrets.set(`${orgId} ${name}`, plain);
        await insert('agent_gateway', orgId, name, 'sealed', { sealed: previous.seal(orgId, name, plain) });
      }
      await insert('agent_gateway', orgId, 'model.base_url', 'value', { value: `http://127.0.0.1:1${i}434/v1` });
      await insert('agent_gateway', orgId, 'provider.vault.api_key', 'reference', { reference: 'env:CUSTODIAN_SECRET_VAULT' });
    }
  });

  afterAll(async () => {
    await pg?.end();
    await db?.drop();
    rmSync(home, { recursive: true, force: true });
  });

  it('a wrong previous key fails with exit 1, names no key and changes nothing', async () => {
    const before = await rows('agent_gateway');
    const wrong = randomBytes(32).toString('base64');
    const r = await cli(env(wrong));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/another master key/);
    for (const secret of [wrong, previousKey.toString('base64'), nextKey.toString('base64'), ...secrets.values()])
      expect(r.stdout + r.stderr).not.toContain(secret);
    expect(await rows('agent_gateway')).toEqual(before);
  });

  it('re-seals every sealed setting of every org under the new key; plain values and references are untouched; a rerun changes nothing', async () => {
    const before = await rows('agent_gateway');
    const r = await cli(env(previousKey.toString('base64')));
    expect(r).toMatchObject({ code: 0, stderr: '' });
    expect(r.stdout).toBe(`settings re-sealed: ${secrets.size}, already under the new key: 0\n`);
    const after = await rows('agent_gateway');
    expect(after.map((x) => [x.org_id, x.name, x.kind])).toEqual(before.map((x) => [x.org_id, x.name, x.kind]));
    for (const [i, row] of after.entries()) {
      if (row.kind !== 'sealed') {
        expect(row).toEqual(before[i]);
        continue;
      }
      expect(row.sealed).not.toBe(before[i]!.sealed);
      expect(SettingsCipher.keyIdOf(row.sealed!)).toBe(next.keyId);
      expect(next.open(row.org_id, row.name, row.sealed!)).toBe(secrets.get(`${row.org_id} ${row.name}`));
      expect(() => previous.open(row.org_id, row.name, row.sealed!)).toThrow(/another master key/);
      expect(row.sealed).not.toContain(secrets.get(`${row.org_id} ${row.name}`));
    }
    expect(after.filter((x) => x.kind === 'sealed')).toHaveLength(secrets.size);

    const again = await cli(env(previousKey.toString('base64')));
    expect(again).toMatchObject({ code: 0, stderr: '' });
    expect(again.stdout).toBe(`settings re-sealed: 0, already under the new key: ${secrets.size}\n`);
    expect(await rows('agent_gateway')).toEqual(after);
  });

  // Identity's sealed OIDC client secret (docs/sso.md: sealed with the master key) is re-sealed in the
  // same transaction; it once stayed under the previous key and no longer opened after a rotation.
  it('re-seals identity’s sealed OIDC client secret too', async () => {
    const orgId = orgs[0]!;
    const plain = `oidc-secret-${randomBytes(6).toString('hex')}`;
    await insert('identity', orgId, 'oidc.client_secret', 'sealed', { sealed: previous.seal(orgId, 'oidc.client_secret', plain) });
    const r = await cli(env(previousKey.toString('base64')));
    expect(r.code).toBe(0);
    const [row] = (await rows('identity')).filter((x) => x.org_id === orgId && x.name === 'oidc.client_secret');
    expect(next.open(orgId, 'oidc.client_secret', row!.sealed!)).toBe(plain);
  });
});
