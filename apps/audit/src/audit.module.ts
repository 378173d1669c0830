import { Module } from '@nestjs/common';
import { ServiceDatabaseModule } from '@custodian/platform';
import { SERVICE_ENTITIES } from './entities';
import { SERVICE_MIGRATIONS } from './migrations';
import { AuditStoreConsumer } from './store/audit-store.consumer';

/** Append-only audit log (issue #6 adds the hash chain, immutability, verify and export). */
@Module({
  imports: [ServiceDatabaseModule.forService({ service: 'audit', entities: SERVICE_ENTITIES, migrations: SERVICE_MIGRATIONS })],
  providers: [AuditStoreConsumer],
})
export class AuditModule {}
