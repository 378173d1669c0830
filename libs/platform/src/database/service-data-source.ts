import { DataSource, type MixedList, type EntitySchema } from 'typeorm';
import type { ServiceName } from '@custodian/contracts';
import { provisionServiceSchema, schemaOf, serviceSessionOptions } from './service-schema';

export interface ServiceDataSourceOptions {
  url: string;
  service: ServiceName;
  // eslint-disable-next-line @typescript-eslint/no-unsafe-function-type
  entities: MixedList<Function | string | EntitySchema>;
  // eslint-disable-next-line @typescript-eslint/no-unsafe-function-type
  migrations: MixedList<Function | string>;
  poolSize?: number;
}

/** A TypeORM data source bound to one service's schema and role. Synchronize is always off. */
export function createServiceDataSource(opts: ServiceDataSourceOptions): DataSource {
  return new DataSource({
    type: 'postgres',
    url: opts.url,
    schema: schemaOf(opts.service),
    entities: opts.entities,
    migrations: opts.migrations,
    migrationsTableName: 'migrations',
    migrationsTransactionMode: 'each',
    synchronize: false,
    migrationsRun: false,
    logging: false,
    extra: {
      options: serviceSessionOptions(opts.service),
      max: opts.poolSize ?? 10,
      connectionTimeoutMillis: 5000,
      application_name: `custodian-${opts.service}`,
    },
  });
}

/** Runs pending migrations under an advisory lock so replicas starting together do not race. */
export async function runMigrationsLocked(ds: DataSource, service: ServiceName): Promise<void> {
  const runner = ds.createQueryRunner();
  await runner.connect();
  try {
    await runner.query('SELECT pg_advisory_lock(hashtext($1))', [`custodian:migrate:${service}`]);
    await assertSchemaNotNewer(ds, service);
    await ds.runMigrations({ transaction: 'each' });
  } finally {
    await runner.query('SELECT pg_advisory_unlock_all()').catch(() => undefined);
    await runner.release();
  }
}

/** The database was migrated by a newer release than the code now starting. */
export class SchemaTooNewError extends Error {
  constructor(service: ServiceName, unknown: string) {
    super(
      `database schema of ${service} is newer than this release: applied migration ${unknown} is unknown to it; run the release that applied it (or newer)`,
    );
    this.name = 'SchemaTooNewError';
  }
}

/**
 * Refuses a schema that holds a migration this code does not know: older code would run against
 * columns and constraints it was never written for (during a rolling upgrade, after the new
 * release's migration job has run, an old pod that restarts must not come up).
 */
export async function assertSchemaNotNewer(ds: DataSource, service: ServiceName): Promise<void> {
  const [{ table }] = await ds.query<Array<{ table: string | null }>>('SELECT to_regclass($1)::text AS "table"', [
    `${schemaOf(service)}.migrations`,
  ]);
  if (table === null) return;
  const known = new Set(ds.migrations.map((m) => m.name ?? m.constructor.name));
  const applied = await ds.query<Array<{ name: string }>>(`SELECT name FROM ${table} ORDER BY timestamp DESC, id DESC`);
  const unknown = applied.find((row) => !known.has(row.name));
  if (unknown) throw new SchemaTooNewError(service, unknown.name);
}

/**
 * The `migrate` command (the Helm pre-install/pre-upgrade hook): provisions the service's schema
 * and applies its pending migrations, then exits without starting the service.
 */
export async function migrateService(
  url: string,
  service: ServiceName,
  // eslint-disable-next-line @typescript-eslint/no-unsafe-function-type
  migrations: MixedList<Function | string>,
): Promise<void> {
  await provisionServiceSchema(url, service);
  // Two connections: one holds the advisory lock while the other migrates.
  const ds = createServiceDataSource({ url, service, entities: [], migrations, poolSize: 2 });
  await ds.initialize();
  try {
    await runMigrationsLocked(ds, service);
  } finally {
    await ds.destroy();
  }
}
