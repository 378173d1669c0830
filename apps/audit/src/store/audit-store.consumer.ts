import { Inject, Injectable, type OnApplicationBootstrap } from '@nestjs/common';
import { AuditEventRecorded, type AuditEvent } from '@custodian/contracts';
import { BUS, SERVICE_DATA_SOURCE, type Bus } from '@custodian/platform';
import type { DataSource } from 'typeorm';

export const AUDIT_STORE_DURABLE = 'audit-store';

/**
 * Consumes every service's relayed audit events durably and stores each exactly once (the event
 * id is the primary key, so a redelivery or a republish is absorbed). Issue #6 adds the chain.
 */
@Injectable()
export class AuditStoreConsumer implements OnApplicationBootstrap {
  constructor(
    @Inject(BUS) private readonly bus: Bus,
    @Inject(SERVICE_DATA_SOURCE) private readonly ds: DataSource,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    await this.bus.subscribe(AuditEventRecorded, AUDIT_STORE_DURABLE, (event) => this.store(event));
  }

  async store(event: AuditEvent): Promise<void> {
    await this.ds.query(
      `INSERT INTO audit_event (id, org_id, occurred_at, service, action, outcome, event)
       VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO NOTHING`,
      [event.id, event.orgId, event.occurredAt, event.service, event.action, event.outcome, JSON.stringify(event)],
    );
  }
}
