import { randomBytes } from 'node:crypto';
import { Client } from 'pg';

/** Admin connection used to create and drop per-suite databases (trust auth on this machine). */
export function adminUrl(): string {
  return process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
}

export interface TestDatabase {
  readonly name: string;
  readonly url: string;
  drop(): Promise<void>;
}

/**
 * A fresh database for one suite; `drop()` removes it (and kicks out leftover sessions). Empty by
 * default; with `migrated`, a clone of the template every service's migrations were applied to
 * (built once per set of migrations by the global setup, `test/support/build-template.ts`), so a
 * host starts without running them. Without a template (a run outside jest), it is empty.
 */
export async function createTestDatabase(prefix: string, { migrated = false } = {}): Promise<TestDatabase> {
  const name = `ct_${prefix.replace(/[^a-z0-9_]/gi, '_').toLowerCase()}_${randomBytes(4).toString('hex')}`;
  const template = migrated ? process.env.CUSTODIAN_TEST_TEMPLATE_DB : undefined;
  if (template !== undefined && !/^ct_template_[0-9a-f]{16}$/.test(template)) throw new Error(`bad template name ${template}`);
  await withAdmin(async (c) => {
    await c.query(template ? `CREATE DATABASE "${name}" TEMPLATE "${template}"` : `CREATE DATABASE "${name}"`);
  });
  const url = new URL(adminUrl());
  url.pathname = `/${name}`;
  return {
    name,
    url: url.toString(),
    drop: () =>
      withAdmin(async (c) => {
        await c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      }),
  };
}

async function withAdmin<T>(fn: (c: Client) => Promise<T>): Promise<T> {
  const client = new Client({ connectionString: adminUrl() });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}
