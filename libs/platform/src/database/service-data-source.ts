import { DataSource, type MixedList, type EntitySchema } from 'typeorm';
import type { ServiceName } from '@custodian/contracts';
import { schemaOf, serviceSessionOptions } from './service-schema';

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
    await ds.runMigrations({ transaction: 'each' });
  } finally {
    await runner.query('SELECT pg_advisory_unlock_all()').catch(() => undefined);
    await runner.release();
  }
}
