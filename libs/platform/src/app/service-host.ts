import 'reflect-metadata';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type DynamicModule, type INestApplication, Module, type Type } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import type { ServiceName } from '@custodian/contracts';
import type { Logger } from 'pino';
import type { Bus } from '../bus/bus';
import { NatsBus } from '../bus/nats.bus';
import { ConfigError, describeConfig, loadConfig, type CustodianConfig } from '../config/config';
import { HealthRegistry } from '../health/health.registry';
import { ClientAddressResolver } from '../http/client-address';
import { compressionMiddleware } from '../http/compression.middleware';
import { httpTracingMiddleware } from '../http/http-tracing.middleware';
import { requestContextMiddleware } from '../http/request-context.middleware';
import { requestDeadlineMiddleware } from '../http/request-deadline.middleware';
import { safeJsonMiddleware } from '../http/safe-json.middleware';
import { RateLimiter } from '../rate-limit/rate-limit.middleware';
import { startTracing } from '../tracing/tracing';
import { createLogger, NestPinoLogger } from '../logging/logger';
import { migrateService } from '../database/service-data-source';
import { CoreModule } from './core.module';

export interface HostOptions {
  config: CustodianConfig;
  logger: Logger;
  bus: Bus;
  databaseUrl: string;
  /** The service modules this process hosts. */
  modules: Array<Type<unknown> | DynamicModule>;
  /** Runs last on stop (e.g. stopping the embedded PostgreSQL). */
  onStopped?: () => Promise<void>;
}

export interface RunningHost {
  app: INestApplication;
  port: number;
  url: string;
  stop(): Promise<void>;
}

/** Builds the Nest application for the given modules and starts listening. */
export async function startHost(opts: HostOptions): Promise<RunningHost> {
  const { config, logger, bus } = opts;
  @Module({ imports: [CoreModule.forRoot({ config, logger, bus, databaseUrl: opts.databaseUrl }), ...opts.modules] })
  class HostModule {}

  // Off unless OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT is set: then spans leave over OTLP/HTTP, nothing else.
  const tracing = await startTracing(
    config.tracing.tracesUrl,
    config.mode === 'all-in-one' ? 'custodian' : `custodian-${config.services[0]}`,
    logger,
  );
  let app: NestExpressApplication;
  try {
    app = await NestFactory.create<NestExpressApplication>(HostModule, {
      logger: new NestPinoLogger(logger.child({ component: 'nest' })),
      bodyParser: false,
      abortOnError: false,
    });
  } catch (error) {
    await tracing.shutdown();
    throw error;
  }
  app.disable('x-powered-by');
  // No automatic weak ETag (a SHA-1 over every response body): record reads set their own ETag
  // (the record version, for If-Match); nothing else promises conditional GETs.
  app.disable('etag');
  // The client address comes through the configured proxies only (docs/deployment.md, Trusted proxies).
  const addresses = new ClientAddressResolver(config.http.trustedProxies, config.http.forwardedHeader);
  app.set('trust proxy', config.http.forwardedHeader === 'x-forwarded-for' ? (addr: string) => addresses.trusts(addr) : false);
  app.use(httpTracingMiddleware);
  app.use(requestContextMiddleware(addresses));
  app.use(requestDeadlineMiddleware(config.http.handlerTimeoutMs, logger));
  const limiter = new RateLimiter(config.rateLimit);
  if (limiter.active) app.use(limiter.middleware());
  if (config.http.compression) app.use(compressionMiddleware());
  app.useBodyParser('json', { limit: config.http.bodyLimitBytes, type: ['application/json', 'application/*+json'] });
  app.use(safeJsonMiddleware);
  const server = app.getHttpServer() as Server;
  server.requestTimeout = config.http.requestTimeoutMs;
  server.headersTimeout = config.http.headersTimeoutMs;
  try {
    await app.listen(config.http.port, config.http.host);
  } catch (error) {
    // A start refused by a module's bootstrap check must not leave pools and timers running.
    await app.close().catch(() => undefined);
    await tracing.shutdown();
    throw error;
  }
  const port = (server.address() as AddressInfo).port;
  const health = app.get(HealthRegistry);
  let stopping: Promise<void> | undefined;

  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      logger.info('shutting down: refusing new work');
      health.markShuttingDown();
      // 1. Stop accepting HTTP; let in-flight requests finish (bounded by the grace period).
      await closeServer(server, config.http.shutdownGraceMs);
      // 2. Stop taking bus work; let in-flight handlers finish; close the connection.
      await bus.drain().catch((error: unknown) => logger.warn({ err: error }, 'bus drain failed'));
      // 3. Module shutdown hooks: outbox relays stop, data sources close.
      await app.close();
      await opts.onStopped?.();
      await tracing.shutdown();
      logger.info('stopped');
    })());

  return { app, port, url: `http://127.0.0.1:${port}`, stop };
}

function closeServer(server: Server, graceMs: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      server.closeAllConnections();
      resolve();
    }, graceMs);
    server.close(() => {
      clearTimeout(timer);
      resolve();
    });
    server.closeIdleConnections();
  });
}

/** SIGTERM/SIGINT stop the host gracefully, once; a second signal exits at once. */
export function installSignalHandlers(host: RunningHost, logger: Logger): void {
  let signalled = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (signalled) process.exit(1);
    signalled = true;
    logger.info({ signal }, 'signal received');
    host.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}

/** Entry point of a service running on its own (distributed mode): NATS + external PostgreSQL. */
export async function runService(service: ServiceName, module: Type<unknown> | DynamicModule): Promise<RunningHost> {
  let config: CustodianConfig;
  try {
    config = loadConfig(process.env, 'service', service);
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`);
      process.exit(1);
    }
    throw error;
  }
  const logger = createLogger({ level: config.log.level, service });
  try {
    logger.info({ config: describeConfig(config) }, 'starting');
    const bus = await NatsBus.connect({ url: config.bus.natsUrl!, namespace: config.bus.namespace, name: `custodian-${service}` }, logger);
    const host = await startHost({ config, logger, bus, databaseUrl: config.database.url!, modules: [module] });
    installSignalHandlers(host, logger);
    logger.info({ port: host.port }, 'listening');
    return host;
  } catch (error) {
    logger.fatal({ err: error }, 'start failed');
    // A refusal such as a master key that opens nothing is meant for the operator: say it plainly too.
    if (error instanceof ConfigError) process.stderr.write(`${error.message}\n`);
    process.exit(1);
  }
}

/**
 * `node dist/apps/<service>/main.js migrate`: applies the service's migrations and exits, so an
 * orchestrator (the Helm pre-install/pre-upgrade Job) migrates before new pods roll out.
 */
export async function runMigrate(
  service: ServiceName,
  // eslint-disable-next-line @typescript-eslint/no-unsafe-function-type
  migrations: Array<Function | string>,
): Promise<void> {
  const url = process.env.DATABASE_URL;
  if (!url) {
    process.stderr.write('DATABASE_URL is required to migrate\n');
    process.exit(1);
  }
  const logger = createLogger({ level: process.env.LOG_LEVEL || 'info', service });
  try {
    await migrateService(url, service, migrations);
    logger.info({ service }, 'migrations applied');
    process.exit(0);
  } catch (error) {
    logger.fatal({ err: error }, 'migrate failed');
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  }
}

/** Entry of every service binary: `migrate` runs the migrations only, anything else starts the service. */
export function runServiceCommand(
  service: ServiceName,
  module: Type<unknown> | DynamicModule,
  // eslint-disable-next-line @typescript-eslint/no-unsafe-function-type
  migrations: Array<Function | string>,
  argv: readonly string[] = process.argv,
): Promise<unknown> {
  return argv[2] === 'migrate' ? runMigrate(service, migrations) : runService(service, module);
}
