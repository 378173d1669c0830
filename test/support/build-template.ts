// Builds (once per set of migrations) a PostgreSQL template database with every service's schema
// and migrations applied, and prints its name. The integration and e2e global setup runs it; each
// suite's all-in-one host then starts on a clone (`CREATE DATABASE … TEMPLATE …`, a file copy)
// instead of running ~40 migrations itself. Tests that need an empty database still get one.
//
// The name carries a hash of the migrations and of the code that provisions schemas, so a changed
// migration builds a new template and a stale one is never used.
import { createHash, randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { ServiceName } from '@custodian/contracts';
import { migrateService } from '@custodian/platform';
import { Client } from 'pg';
import { SERVICE_MIGRATIONS as agentGateway } from '../../apps/agent-gateway/src/migrations';
import { SERVICE_MIGRATIONS as approvals } from '../../apps/approvals/src/migrations';
import { SERVICE_MIGRATIONS as audit } from '../../apps/audit/src/migrations';
import { SERVICE_MIGRATIONS as identity } from '../../apps/identity/src/migrations';
import { SERVICE_MIGRATIONS as objects } from '../../apps/objects/src/migrations';
import { adminUrl } from './database';

const root = path.resolve(__dirname, '../..');
const SERVICES: ReadonlyArray<[ServiceName, Parameters<typeof migrateService>[2]]> = [
  ['identity', identity],
  ['objects', objects],
  ['approvals', approvals],
  ['audit', audit],
  ['agent-gateway', agentGateway],
];
/** Templates kept at once (concurrent runs on one machine may still clone an older one). */
const KEEP = 6;

function migrationsHash(): string {
  const hash = createHash('sha256');
  const dirs = [
    ...['agent-gateway', 'approvals', 'audit', 'identity', 'objects'].map((s) => `apps/${s}/src/migrations`),
    'libs/platform/src/database',
  ];
  for (const dir of dirs) {
    for (const file of readdirSync(path.join(root, dir)).sort()) {
      if (!file.endsWith('.ts')) continue;
      hash.update(`${dir}/${file}\n`).update(readFileSync(path.join(root, dir, file)));
    }
  }
  return hash.digest('hex').slice(0, 16);
}

function urlOf(database: string): string {
  const url = new URL(adminUrl());
  url.pathname = `/${database}`;
  return url.toString();
}

async function main(): Promise<void> {
  const name = `ct_template_${migrationsHash()}`;
  const admin = new Client({ connectionString: adminUrl() });
  await admin.connect();
  try {
    // Two runs starting together build it once.
    await admin.query('SELECT pg_advisory_lock(hashtext($1))', ['custodian:test-template']);
    const exists = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (exists.rowCount === 0) {
      const building = `ct_tbuild_${randomBytes(4).toString('hex')}`;
      await admin.query(`CREATE DATABASE "${building}"`);
      try {
        for (const [service, migrations] of SERVICES) await migrateService(urlOf(building), service, migrations);
        await admin.query(`ALTER DATABASE "${building}" RENAME TO "${name}"`);
        // Nobody connects to a template: a connection would make every clone fail.
        await admin.query(`ALTER DATABASE "${name}" WITH IS_TEMPLATE true ALLOW_CONNECTIONS false`);
      } catch (error) {
        await admin.query(`DROP DATABASE IF EXISTS "${building}" WITH (FORCE)`);
        throw error;
      }
      const old = await admin.query<{ datname: string }>(
        `SELECT datname FROM pg_database WHERE datname LIKE 'ct\\_template\\_%' AND datname <> $1 ORDER BY oid DESC OFFSET $2`,
        [name, KEEP - 1],
      );
      for (const { datname } of old.rows) {
        await admin.query(`ALTER DATABASE "${datname}" WITH IS_TEMPLATE false`);
        await admin.query(`DROP DATABASE IF EXISTS "${datname}" WITH (FORCE)`);
      }
    }
    process.stdout.write(`${name}\n`);
  } finally {
    await admin.end();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
