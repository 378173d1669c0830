import {
  Inject,
  Injectable,
  Module,
  type BeforeApplicationShutdown,
  type DynamicModule,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
} from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import type { ServiceName } from '@custodian/contracts';
import type { Logger } from 'pino';
import type { DataSource } from 'typeorm';
import { BUS, type Bus } from '../bus/bus';
import type { CustodianConfig } from '../config/config';
import { createServiceDataSource, runMigrationsLocked, type ServiceDataSourceOptions } from '../database/service-data-source';
import { provisionServiceSchema } from '../database/service-schema';
import { HealthRegistry } from '../health/health.registry';
import { MetricsService } from '../metrics/metrics.service';
import { AUDIT_STORE_CONSUMER } from '../outbox/audit-lag.probe';
import { DenialOutboxRegistrar } from '../outbox/denial-outbox.registrar';
import { OutboxRelay } from '../outbox/outbox-relay.service';
import { auditHashKey } from '../outbox/audit-redaction';
import { OutboxWriter } from '../outbox/outbox.writer';
import { CONFIG, DATABASE_URL, LOGGER, SERVICE_DATA_SOURCE, SERVICE_NAME } from './tokens';

@Injectable()
class ServiceDatabaseLifecycle implements OnApplicationBootstrap, BeforeApplicationShutdown, OnApplicationShutdown {
  constructor(
    @Inject(SERVICE_DATA_SOURCE) private readonly ds: DataSource,
    @Inject(OutboxRelay) private readonly relay: OutboxRelay,
  ) {}

  onApplicationBootstrap(): void {
    this.relay.start();
  }

  async beforeApplicationShutdown(): Promise<void> {
    await this.relay.stop();
  }

  async onApplicationShutdown(): Promise<void> {
    if (this.ds.isInitialized) await this.ds.destroy();
  }
}

/**
 * A service's own database: its schema and role provisioned, migrations run (under a lock), a
 * readiness check, its outbox writer and relay (over NATS pausing while the audit store lags, F5),
 * and its outbox registered for the guard's refusals on its routes (A6). Each service module
 * imports its own instance.
 */
@Module({})
export class ServiceDatabaseModule {
  static forService(opts: Pick<ServiceDataSourceOptions, 'service' | 'entities' | 'migrations'>): DynamicModule {
    const service: ServiceName = opts.service;
    return {
      module: ServiceDatabaseModule,
      imports: [DiscoveryModule],
      providers: [
        // A plain value in the metadata keeps each service's instance of this module distinct.
        { provide: SERVICE_NAME, useValue: service },
        {
          provide: SERVICE_DATA_SOURCE,
          inject: [CONFIG, DATABASE_URL, HealthRegistry, LOGGER],
          useFactory: async (config: CustodianConfig, url: string, health: HealthRegistry, logger: Logger): Promise<DataSource> => {
            await provisionServiceSchema(url, service);
            const ds = createServiceDataSource({ ...opts, url, poolSize: config.database.poolSize });
            await ds.initialize();
            await runMigrationsLocked(ds, service);
            health.register(`database:${service}`, async () => {
              await ds.query('SELECT 1');
            });
            logger.info({ service }, 'database ready');
            return ds;
          },
        },
        {
          provide: OutboxWriter,
          inject: [CONFIG],
          // Keyed hashes of secrets in audit events must agree across processes and restarts.
          useFactory: (config: CustodianConfig) => new OutboxWriter(service, auditHashKey(config.secrets.masterKey)),
        },
        {
          provide: OutboxRelay,
          inject: [SERVICE_DATA_SOURCE, BUS, OutboxWriter, LOGGER, CONFIG, MetricsService],
          useFactory: (ds: DataSource, bus: Bus, writer: OutboxWriter, logger: Logger, config: CustodianConfig, metrics: MetricsService) =>
            new OutboxRelay(ds, bus, writer, logger.child({ component: `outbox-relay:${service}` }), {
              auditLag: { consumer: AUDIT_STORE_CONSUMER, maxLag: config.audit.maxLag, registry: metrics.registry, service },
            }),
        },
        ServiceDatabaseLifecycle,
        DenialOutboxRegistrar,
      ],
      exports: [SERVICE_DATA_SOURCE, OutboxWriter, OutboxRelay, SERVICE_NAME],
    };
  }
}
