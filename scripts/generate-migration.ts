/**
 * Writes a migration for one service from the difference between its entities and its
 * migrated schema, on a scratch database that is dropped afterwards.
 *   node scripts/run-ts.cjs scripts/generate-migration.ts <service> <Name>
 * Needs TEST_DATABASE_URL (default: postgres://postgres@127.0.0.1:5432/postgres).
 */
import 'reflect-metadata';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { SERVICE_NAMES, type ServiceName } from '@custodian/contracts';
import { createServiceDataSource, provisionServiceSchema, runMigrationsLocked } from '@custodian/platform';
import { createTestDatabase } from '../test/support/database';

async function main(): Promise<void> {
  const [service, name] = process.argv.slice(2) as [ServiceName, string];
  if (!SERVICE_NAMES.includes(service) || !/^[A-Z][A-Za-z0-9]+$/.test(name ?? '')) {
    throw new Error('usage: generate-migration.ts <service> <PascalCaseName>');
  }
  const appDir = path.resolve(__dirname, '..', 'apps', service, 'src');
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { SERVICE_ENTITIES } = require(path.join(appDir, 'entities')) as { SERVICE_ENTITIES: Array<new () => unknown> };
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { SERVICE_MIGRATIONS } = require(path.join(appDir, 'migrations')) as { SERVICE_MIGRATIONS: Array<new () => unknown> };
  const db = await createTestDatabase(`gen_${service}`);
  try {
    await provisionServiceSchema(db.url, service);
    const ds = createServiceDataSource({ url: db.url, service, entities: SERVICE_ENTITIES, migrations: SERVICE_MIGRATIONS });
    await ds.initialize();
    await runMigrationsLocked(ds, service);
    const sql = await ds.driver.createSchemaBuilder().log();
    await ds.destroy();
    if (sql.upQueries.length === 0) {
      console.log('no changes');
      return;
    }
    const stamp = Date.now();
    const className = `${name}${stamp}`;
    const q = (s: string): string => `    await runner.query(${JSON.stringify(s)});`;
    const body = `import type { MigrationInterface, QueryRunner } from 'typeorm';

export class ${className} implements MigrationInterface {
  name = '${className}';

  async up(runner: QueryRunner): Promise<void> {
${sql.upQueries.map((x) => q(x.query)).join('\n')}
  }

  async down(runner: QueryRunner): Promise<void> {
${sql.downQueries
  .reverse()
  .map((x) => q(x.query))
  .join('\n')}
  }
}
`;
    const file = path.join(
      appDir,
      'migrations',
      `${stamp}-${name.replace(/[A-Z]/g, (c, i: number) => (i ? '-' : '') + c.toLowerCase())}.ts`,
    );
    writeFileSync(file, body);
    console.log(`wrote ${path.relative(process.cwd(), file)}; add ${className} to migrations/index.ts`);
  } finally {
    await db.drop();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
