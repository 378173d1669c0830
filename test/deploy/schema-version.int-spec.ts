import { createServiceDataSource, migrateService, provisionServiceSchema, runMigrationsLocked } from '@custodian/platform';
import type { DataSource } from 'typeorm';
import { SERVICE_ENTITIES } from '../../apps/approvals/src/entities';
import { SERVICE_MIGRATIONS } from '../../apps/approvals/src/migrations';
import { createTestDatabase, type TestDatabase } from '../support/database';

// An older release must not start against a schema a newer release has migrated: it would run
// code that does not know the newer columns and constraints (the Helm hook migrates before the
// new pods roll out, so old pods that restart meanwhile meet a newer schema).
describe('schema newer than the code', () => {
  let db: TestDatabase;
  let ds: DataSource;

  beforeAll(async () => {
    db = await createTestDatabase('schema_version');
    await provisionServiceSchema(db.url, 'approvals');
    ds = createServiceDataSource({ url: db.url, service: 'approvals', entities: SERVICE_ENTITIES, migrations: SERVICE_MIGRATIONS });
    await ds.initialize();
  });

  afterAll(async () => {
    await ds.destroy();
    await db.drop();
  });

  it('the migrate command applies every migration and is idempotent', async () => {
    await migrateService(db.url, 'approvals', SERVICE_MIGRATIONS);
    await migrateService(db.url, 'approvals', SERVICE_MIGRATIONS);
    const rows = await ds.query<Array<{ name: string }>>('SELECT name FROM migrations ORDER BY timestamp');
    expect(rows.map((r) => r.name)).toHaveLength(SERVICE_MIGRATIONS.length);
    expect(await ds.showMigrations()).toBe(false);
  });

  it('refuses to start when the database holds a migration this code does not know', async () => {
    await runMigrationsLocked(ds, 'approvals');
    await ds.query(`INSERT INTO migrations (timestamp, name) VALUES (9999999999999, 'FromTheFuture9999999999999')`);
    await expect(runMigrationsLocked(ds, 'approvals')).rejects.toThrow(
      'database schema of approvals is newer than this release: applied migration FromTheFuture9999999999999 is unknown to it; run the release that applied it (or newer)',
    );
    await expect(migrateService(db.url, 'approvals', SERVICE_MIGRATIONS)).rejects.toThrow('is newer than this release');
  });
});
