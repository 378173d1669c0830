import { Inject, Injectable, type OnModuleInit } from '@nestjs/common';
import { DiscoveryService } from '@nestjs/core';
import type { ServiceName } from '@custodian/contracts';
import type { DataSource } from 'typeorm';
import { SERVICE_DATA_SOURCE, SERVICE_NAME } from '../app/tokens';
import { DenialAuditor } from '../auth/denial-auditor';
import { OutboxWriter } from './outbox.writer';

/**
 * Part of every service's database module: registers that service's outbox with the global
 * DenialAuditor, for the controllers of the module that imports it (the service module), so the
 * guard's refusals on a service's routes land in that service's outbox, each in a transaction of
 * its own (A6).
 */
@Injectable()
export class DenialOutboxRegistrar implements OnModuleInit {
  constructor(
    @Inject(SERVICE_NAME) private readonly service: ServiceName,
    @Inject(SERVICE_DATA_SOURCE) private readonly ds: DataSource,
    @Inject(OutboxWriter) private readonly writer: OutboxWriter,
    @Inject(DenialAuditor) private readonly denials: DenialAuditor,
    @Inject(DiscoveryService) private readonly discovery: DiscoveryService,
  ) {}

  onModuleInit(): void {
    const own = this.discovery.getProviders().find((w) => w.instance === this)?.host;
    const controllers = this.discovery
      .getControllers()
      .filter((w) => own !== undefined && w.host?.imports.has(own))
      .map((w) => w.metatype);
    this.denials.register(
      this.service,
      async (event) => {
        await this.ds.transaction((manager) => this.writer.append(manager, event));
      },
      controllers,
    );
  }
}
