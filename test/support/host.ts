import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
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
  const db = await createTestDatabase(prefix);
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

export async function login(baseUrl: string, creds = TEST_ADMIN): Promise<{ accessToken: string; refreshToken: string; orgId: string }> {
  const res = await fetch(`${baseUrl}/api/v1/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(creds),
  });
  if (res.status !== 200) throw new Error(`login failed: ${res.status} ${await res.text()}`);
  return (await res.json()) as { accessToken: string; refreshToken: string; orgId: string };
}
