import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ConfigError } from '@custodian/platform';
import { Client } from 'pg';
import { startAllInOne } from '../../all-in-one/all-in-one';
import { createTestDatabase, type TestDatabase } from '../support/database';
import { TEST_ADMIN, login } from '../support/host';

/**
 * A master key that does not open what an installation already sealed refuses the start, with a
 * message naming where the key came from — instead of answering ready while every login fails and
 * sealing a new audit checkpoint key under the wrong key.
 */
describe('master key on an existing installation', () => {
  let db: TestDatabase;
  let pg: Client;
  const dataDir = mkdtempSync(path.join(tmpdir(), 'custodian-mk-'));
  const keyA = randomBytes(32).toString('base64');
  const keyB = randomBytes(32).toString('base64');
  const env = (masterKey?: string): Record<string, string> => ({
    DATABASE_URL: db.url,
    PORT: '0',
    HOST: '127.0.0.1',
    CUSTODIAN_DATA_DIR: dataDir,
    ...(masterKey ? { CUSTODIAN_MASTER_KEY: masterKey } : {}),
    CUSTODIAN_ADMIN_EMAIL: TEST_ADMIN.email,
    CUSTODIAN_ADMIN_PASSWORD: TEST_ADMIN.password,
    LOG_LEVEL: 'silent',
    CUSTODIAN_SHUTDOWN_GRACE_MS: '2000',
  });
  const refusal = async (masterKey?: string): Promise<ConfigError> => {
    const started = await startAllInOne(env(masterKey)).then(
      async (host) => {
        await host.stop();
        return undefined;
      },
      (error: unknown) => error,
    );
    expect(started).toBeInstanceOf(ConfigError);
    return started as ConfigError;
  };
  const count = async (table: string): Promise<number> => Number((await pg.query(`SELECT count(*) AS n FROM ${table}`)).rows[0].n);

  beforeAll(async () => {
    db = await createTestDatabase('master_key', { migrated: true });
    const host = await startAllInOne(env(keyA));
    await login(host.url);
    await host.stop();
    pg = new Client({ connectionString: db.url });
    await pg.connect();
  });

  afterAll(async () => {
    await pg?.end();
    await db?.drop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('a wrong, well-formed key refuses to start, names its source, and seals nothing new', async () => {
    const auditKeys = await count('audit.audit_signing_key');
    const identityKeys = await count('identity.signing_key');
    const error = await refusal(keyB);
    expect(error.message).toContain('CUSTODIAN_MASTER_KEY');
    expect(error.message).toMatch(/does not open the .*signing keys/);
    expect(await count('audit.audit_signing_key')).toBe(auditKeys);
    expect(await count('identity.signing_key')).toBe(identityKeys);
  });

  it('the key from a file is named by its path', async () => {
    const file = path.join(dataDir, 'other.key');
    writeFileSync(file, `${keyB}\n`, { mode: 0o600 });
    const started = await startAllInOne({ ...env(), CUSTODIAN_MASTER_KEY_FILE: file }).then(
      async (host) => {
        await host.stop();
        return undefined;
      },
      (error: unknown) => error,
    );
    expect(started).toBeInstanceOf(ConfigError);
    expect((started as Error).message).toContain(`CUSTODIAN_MASTER_KEY_FILE=${file}`);
  });

  it('no configured key and no master.key beside an existing database: refuses, and leaves no new master.key', async () => {
    const error = await refusal(undefined);
    expect(error.message).toContain(path.join(dataDir, 'master.key'));
    expect(existsSync(path.join(dataDir, 'master.key'))).toBe(false);
  });

  it('the audit service checks its own sealed checkpoint key (identity keys gone)', async () => {
    await pg.query('DELETE FROM identity.signing_key');
    const auditKeys = await count('audit.audit_signing_key');
    const error = await refusal(keyB);
    expect(error.message).toContain('audit checkpoint signing key');
    expect(await count('audit.audit_signing_key')).toBe(auditKeys);
    // Identity, having no keys left, made one under the wrong key before audit refused.
    await pg.query('DELETE FROM identity.signing_key');
  });

  it('the right key still starts', async () => {
    const host = await startAllInOne(env(keyA));
    try {
      expect((await fetch(`${host.url}/health/ready`)).status).toBe(200);
    } finally {
      await host.stop();
    }
  });
});
