import { Global, Module, type DynamicModule } from '@nestjs/common';
import { APP_FILTER, APP_GUARD, DiscoveryModule, Reflector } from '@nestjs/core';
import type { Logger } from 'pino';
import { AuthGuard } from '../auth/auth.guard';
import { DenialAuditor } from '../auth/denial-auditor';
import { PrincipalResolver } from '../auth/principal-resolver';
import { BUS, type Bus } from '../bus/bus';
import type { CustodianConfig } from '../config/config';
import { HealthController } from '../health/health.controller';
import { HealthRegistry } from '../health/health.registry';
import { ProblemFilter } from '../http/problem.filter';
import { MetricsService } from '../metrics/metrics.service';
import { OpenApiController } from '../openapi/openapi.controller';
import { CONFIG, DATABASE_URL, LOGGER } from './tokens';

export interface CoreModuleOptions {
  config: CustodianConfig;
  logger: Logger;
  bus: Bus;
  databaseUrl: string;
}

/**
 * What every process has exactly once, whichever services it hosts: config, logger, bus,
 * health/metrics endpoints, the deny-by-default guard and the problem+json error filter.
 */
@Global()
@Module({})
export class CoreModule {
  static forRoot({ config, logger, bus, databaseUrl }: CoreModuleOptions): DynamicModule {
    return {
      module: CoreModule,
      imports: [DiscoveryModule],
      controllers: [HealthController, OpenApiController],
      providers: [
        { provide: CONFIG, useValue: config },
        { provide: LOGGER, useValue: logger },
        { provide: BUS, useValue: bus },
        { provide: DATABASE_URL, useValue: databaseUrl },
        {
          provide: HealthRegistry,
          useFactory: () => {
            const registry = new HealthRegistry();
            registry.register('bus', async () => {
              if (!bus.isReady()) throw new Error('bus not ready');
            });
            return registry;
          },
        },
        { provide: MetricsService, useFactory: () => new MetricsService({ mode: config.mode }) },
        {
          provide: PrincipalResolver,
          inject: [MetricsService],
          useFactory: async (metrics: MetricsService) => {
            const resolver = new PrincipalResolver(
              bus,
              {
                issuer: config.auth.issuer,
                audience: config.auth.audience,
                clockToleranceSeconds: config.auth.clockToleranceSeconds,
                // No access token is issued for longer than the configured TTL; a longer one was not minted by identity.
                maxLifetimeSeconds: config.auth.accessTokenTtlSeconds + config.auth.clockToleranceSeconds,
              },
              logger,
              { ttlMs: config.auth.principalCacheMs },
            );
            await resolver.start();
            metrics.observePrincipalCache(() => resolver.stats());
            return resolver;
          },
        },
        {
          provide: DenialAuditor,
          inject: [MetricsService],
          // Each service's database module registers its outbox with it (DenialOutboxRegistrar, A6).
          useFactory: (metrics: MetricsService) =>
            new DenialAuditor(bus, logger, {
              services: config.services,
              metrics,
              windowMs: config.audit.denialWindowMs,
              budget: config.audit.denialBudget,
            }),
        },
        {
          provide: APP_GUARD,
          inject: [Reflector, PrincipalResolver, DenialAuditor],
          useFactory: (reflector: Reflector, resolver: PrincipalResolver, denials: DenialAuditor) =>
            new AuthGuard(reflector, resolver, denials, logger),
        },
        { provide: APP_FILTER, useFactory: () => new ProblemFilter(logger) },
      ],
      exports: [CONFIG, LOGGER, BUS, DATABASE_URL, HealthRegistry, MetricsService, PrincipalResolver, DenialAuditor],
    };
  }
}
