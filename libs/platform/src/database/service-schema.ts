import { Client } from 'pg';
import type { ServiceName } from '@custodian/contracts';

/** Each service owns exactly one PostgreSQL schema and one role; nobody else reads that schema. */
export function schemaOf(service: ServiceName): string {
  return service.replace(/-/g, '_');
}

export function roleOf(service: ServiceName): string {
  return `custodian_${schemaOf(service)}`;
}

/**
 * Creates the service's role and schema if they are missing, and lets the connecting user act
 * as that role. Idempotent and safe for replicas starting together (advisory lock). Where the
 * connecting user may not create roles (a locked-down install), the operator provisions the same
 * objects beforehand (docs/operations.md) and this only verifies them.
 */
export async function provisionServiceSchema(url: string, service: ServiceName): Promise<void> {
  const schema = schemaOf(service);
  const role = roleOf(service);
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    await client.query('SELECT pg_advisory_lock(hashtext($1))', [`custodian:provision:${schema}`]);
    const roleExists = await client.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [role]);
    if (roleExists.rowCount === 0) await client.query(`CREATE ROLE ${role} NOLOGIN`);
    await client.query(`GRANT ${role} TO CURRENT_USER`).catch(() => undefined); // already a member / superuser
    // Look first: CREATE SCHEMA IF NOT EXISTS needs CREATE on the database even when the schema
    // exists, which a pre-provisioned, locked-down install does not grant.
    const schemaExists = await client.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [schema]);
    if (schemaExists.rowCount === 0) {
      await client.query(`CREATE SCHEMA ${schema} AUTHORIZATION ${role}`);
      await client.query(`REVOKE ALL ON SCHEMA ${schema} FROM PUBLIC`);
    }
  } finally {
    await client.query('SELECT pg_advisory_unlock_all()').catch(() => undefined);
    await client.end();
  }
}

/** Connection options that make every pooled session act as the service role inside its schema. */
export function serviceSessionOptions(service: ServiceName): string {
  return `-c role=${roleOf(service)} -c search_path=${schemaOf(service)}`;
}
