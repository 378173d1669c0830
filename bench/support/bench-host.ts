import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startAllInOne, type AllInOne } from '../../all-in-one/all-in-one';
import { createTestDatabase, type TestDatabase } from '../../test/support/database';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- API answers, checked where used
export type Json = any;

export interface BenchHost {
  readonly host: AllInOne;
  readonly db: TestDatabase;
  /** Stops the host, drops its database and removes its data directory. */
  stop(): Promise<void>;
}

/**
 * An all-in-one for a benchmark, on loopback: a fresh database (a clone of the migrated template,
 * named after `prefix`), a temporary data directory, a random master key, `admin` as the bootstrap
 * administrator and logs off (BENCH_LOG_LEVEL to see them); `env` adds to or overrides that.
 */
export async function startBenchHost(
  prefix: string,
  admin: { email: string; password: string },
  env: Record<string, string> = {},
): Promise<BenchHost> {
  process.env.TEST_DATABASE_URL ??= 'postgres://postgres@127.0.0.1:5432/postgres';
  const db = await createTestDatabase(prefix);
  const dataDir = mkdtempSync(path.join(tmpdir(), 'custodian-bench-'));
  const host = await startAllInOne({
    DATABASE_URL: db.url,
    PORT: '0',
    HOST: '127.0.0.1',
    CUSTODIAN_DATA_DIR: dataDir,
    CUSTODIAN_MASTER_KEY: randomBytes(32).toString('base64'),
    CUSTODIAN_ADMIN_EMAIL: admin.email,
    CUSTODIAN_ADMIN_PASSWORD: admin.password,
    LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? 'silent',
    ...env,
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

/** `call(method, path, token, body)` on `<base>/api/v1`: the parsed answer, or an error naming the status and body. */
export function benchApi(base: string): (method: string, p: string, token: string | undefined, body?: unknown) => Promise<Json> {
  return async (method, p, token, body) => {
    const res = await fetch(`${base}/api/v1${p}`, {
      method,
      headers: {
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...(token ? { authorization: `Bearer ${token}` } : {}),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`${method} ${p}: ${res.status} ${text}`);
    return text ? JSON.parse(text) : undefined;
  };
}
