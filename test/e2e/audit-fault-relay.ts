/**
 * A relay-only process for the audit fault tests: the outbox relay of one schema, publishing to
 * NATS. It reconnects forever and is meant to be killed (-9) at any moment.
 *   node scripts/run-ts.cjs test/e2e/audit-fault-relay.ts   (DATABASE_URL, NATS_URL, CUSTODIAN_BUS_NAMESPACE,
 *   CUSTODIAN_AUDIT_MAX_LAG: pause while the audit store lags that far behind, 0 = never)
 */
import 'reflect-metadata';
import { AUDIT_STORE_CONSUMER, NatsBus, OutboxRelay, OutboxWriter, createServiceDataSource } from '@custodian/platform';
import pino from 'pino';
import { SERVICE_ENTITIES } from '../../apps/audit/src/entities';

async function main(): Promise<void> {
  const logger = pino({ level: 'warn' });
  const ds = createServiceDataSource({ url: process.env.DATABASE_URL!, service: 'audit', entities: SERVICE_ENTITIES, migrations: [] });
  await ds.initialize();
  let bus: NatsBus | undefined;
  while (!bus) {
    try {
      bus = await NatsBus.connect(
        { url: process.env.NATS_URL!, namespace: process.env.CUSTODIAN_BUS_NAMESPACE!, name: 'audit-fault-relay' },
        logger,
      );
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  const relay = new OutboxRelay(ds, bus, new OutboxWriter('audit'), logger, {
    pollMs: 50,
    backoffBaseMs: 50,
    backoffMaxMs: 500,
    auditLag: { consumer: AUDIT_STORE_CONSUMER, maxLag: Number(process.env.CUSTODIAN_AUDIT_MAX_LAG ?? 0) },
  });
  relay.start();
  process.stdout.write('relay running\n');
  process.on('SIGTERM', () => {
    void relay
      .stop()
      .then(() => bus?.drain())
      .then(() => ds.destroy())
      .finally(() => process.exit(0));
  });
}

void main().catch((error: unknown) => {
  process.stderr.write(`${String(error)}\n`);
  process.exit(1);
});
