import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Client } from 'pg';
import { startAllInOne, type AllInOne } from '../../all-in-one/all-in-one';
import { createTestDatabase, type TestDatabase } from './database';

export const TEST_ADMIN = { email: 'admin@test.local', password: 'correct-horse-battery-staple' };

export interface TestHost {
  host: AllInOne;
  db: TestDatabase;
  stop(): Promise<void>;
}

/** All five services in this process on a fresh database; in-process bus unless `natsUrl` is given. */
export async function startTestHost(prefix: string, extraEnv: Record<string, string> = {}): Promise<TestHost> {
  const db = await createTestDatabase(prefix, { migrated: true });
  const dataDir = mkdtempSync(path.join(tmpdir(), 'custodian-test-'));
  const host = await startAllInOne({
    DATABASE_URL: db.url,
    PORT: '0',
    HOST: '127.0.0.1',
    CUSTODIAN_DATA_DIR: dataDir,
    CUSTODIAN_MASTER_KEY: randomBytes(32).toString('base64'),
    CUSTODIAN_ADMIN_EMAIL: TEST_ADMIN.email,
    CUSTODIAN_ADMIN_PASSWORD: TEST_ADMIN.password,
    LOG_LEVEL: 'silent',
    CUSTODIAN_SHUTDOWN_GRACE_MS: '2000',
    ...extraEnv,
  });
  return {
    host,
    db,
    async stop() {
      await host.stop();
      await db.drop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** startTestHost, a connected pg client on its database (end it before t.stop()), the admin's access token and org. */
export async function startTestHostWithDb(
  prefix: string,
  extraEnv: Record<string, string> = {},
): Promise<{ t: TestHost; base: string; pg: Client; admin: string; orgId: string }> {
  const t = await startTestHost(prefix, extraEnv);
  const pg = new Client({ connectionString: t.db.url });
  await pg.connect();
  const { accessToken, orgId } = await login(t.host.url);
  return { t, base: t.host.url, pg, admin: accessToken, orgId };
}

export async function login(baseUrl: string, creds = TEST_ADMIN): Promise<{ accessToken: string; refreshToken: string; orgId: string }> {
  const res = await fetch(`${baseUrl}/api/v1/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(creds),
  });
  if (res.status !== 200) throw new Error(`login failed: ${res.status} ${await res.text()}`);
  return (await res.json()) as { accessToken: string; refreshToken: string; orgId: string };
}

/**
 * A member `<name>@test.local` created by the admin with a password, given the permission sets,
 * and signed in: its user id and an access token.
 */
export async function createMember(
  baseUrl: string,
  adminToken: string,
  name: string,
  setIds: readonly string[],
  password: string,
): Promise<{ userId: string; accessToken: string }> {
  const send = async (path: string, body: unknown, status: number): Promise<Record<string, unknown>> => {
    const res = await fetch(`${baseUrl}/api/v1${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${adminToken}` },
      body: JSON.stringify(body),
    });
    if (res.status !== status) throw new Error(`POST ${path}: expected ${status}, got ${res.status}: ${await res.text()}`);
    return (await res.json()) as Record<string, unknown>;
  };
  const email = `${name}@test.local`;
  const user = await send('/users', { email, displayName: name, password }, 201);
  const userId = String(user.id);
  for (const set of setIds) await send(`/permission-sets/${set}/assignments`, { userId }, 201);
  return { userId, accessToken: (await login(baseUrl, { email, password })).accessToken };
}
