import { SERVICE_NAMES, type ServiceName } from '@custodian/contracts';
import { createServiceDataSource, provisionServiceSchema, runMigrationsLocked, schemaOf } from '@custodian/platform';
import type { DataSource } from 'typeorm';
import { Client } from 'pg';
import { SERVICE_ENTITIES as agentGatewayEntities } from '../../apps/agent-gateway/src/entities';
import { SERVICE_MIGRATIONS as agentGatewayMigrations } from '../../apps/agent-gateway/src/migrations';
import { SERVICE_ENTITIES as approvalsEntities } from '../../apps/approvals/src/entities';
import { SERVICE_MIGRATIONS as approvalsMigrations } from '../../apps/approvals/src/migrations';
import { SERVICE_ENTITIES as auditEntities } from '../../apps/audit/src/entities';
import { SERVICE_MIGRATIONS as auditMigrations } from '../../apps/audit/src/migrations';
import { SERVICE_ENTITIES as identityEntities } from '../../apps/identity/src/entities';
import { SERVICE_MIGRATIONS as identityMigrations } from '../../apps/identity/src/migrations';
import { SERVICE_ENTITIES as objectsEntities } from '../../apps/objects/src/entities';
import { SERVICE_MIGRATIONS as objectsMigrations } from '../../apps/objects/src/migrations';
import { createTestDatabase, type TestDatabase } from '../support/database';

// eslint-disable-next-line @typescript-eslint/no-unsafe-function-type
const SERVICES: Record<ServiceName, { entities: Function[]; migrations: Function[] }> = {
  identity: { entities: identityEntities, migrations: identityMigrations },
  objects: { entities: objectsEntities, migrations: objectsMigrations },
  'agent-gateway': { entities: agentGatewayEntities, migrations: agentGatewayMigrations },
  approvals: { entities: approvalsEntities, migrations: approvalsMigrations },
  audit: { entities: auditEntities, migrations: auditMigrations },
};

/** STYLE.md #6: entities may not drift from migrations, and migrations go down and up with data. */
describe('service migrations', () => {
  let db: TestDatabase;
  const sources = new Map<ServiceName, DataSource>();

  beforeAll(async () => {
    db = await createTestDatabase('migrations');
    for (const service of SERVICE_NAMES) {
      await provisionServiceSchema(db.url, service);
      const ds = createServiceDataSource({ url: db.url, service, ...SERVICES[service] });
      await ds.initialize();
      sources.set(service, ds);
    }
  });

  afterAll(async () => {
    for (const ds of sources.values()) await ds.destroy();
    await db.drop();
  });

  it('every service module is covered by this test', () => {
    expect(Object.keys(SERVICES).sort()).toEqual([...SERVICE_NAMES].sort());
  });

  it.each(SERVICE_NAMES)('%s: migrations produce exactly the schema its entities describe', async (service) => {
    const ds = sources.get(service)!;
    await runMigrationsLocked(ds, service);
    const pending = await ds.driver.createSchemaBuilder().log();
    expect(pending.upQueries.map((q) => q.query)).toEqual([]);
  });

  it.each(SERVICE_NAMES)('%s: migrations go down and up again with rows in the tables', async (service) => {
    const ds = sources.get(service)!;
    await runMigrationsLocked(ds, service);
    await ds.query(`INSERT INTO outbox (id, subject, payload) VALUES (gen_random_uuid(), 'evt.test', '{}'::jsonb)`);
    for (let i = 0; i < SERVICES[service].migrations.length; i++) await ds.undoLastMigration({ transaction: 'each' });
    const left = await ds.query(`SELECT table_name FROM information_schema.tables WHERE table_schema = $1 AND table_name <> 'migrations'`, [
      schemaOf(service),
    ]);
    expect(left).toEqual([]);
    await runMigrationsLocked(ds, service);
    expect((await ds.driver.createSchemaBuilder().log()).upQueries).toEqual([]);
  });

  it('a service role cannot read another service schema', async () => {
    const client = new Client({ connectionString: db.url, options: '-c role=custodian_objects' });
    await client.connect();
    try {
      await expect(client.query('SELECT * FROM identity.user_account')).rejects.toThrow(/permission denied/);
      await expect(client.query('SELECT * FROM audit.audit_event')).rejects.toThrow(/permission denied/);
      await expect(client.query('SELECT count(*) FROM objects.outbox')).resolves.toBeDefined();
    } finally {
      await client.end();
    }
  });

  it('provisioning is idempotent', async () => {
    await expect(provisionServiceSchema(db.url, 'identity')).resolves.toBeUndefined();
    await expect(provisionServiceSchema(db.url, 'identity')).resolves.toBeUndefined();
  });
});
