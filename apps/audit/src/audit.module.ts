import { Module } from '@nestjs/common';
import { ServiceDatabaseModule } from '@custodian/platform';
import { AuditController } from './api/audit.controller';
import { AuditQueryService } from './api/audit-query.service';
import { AuditVisibilityClient } from './api/audit-visibility.client';
import { CheckpointService } from './checkpoints/checkpoint.service';
import { SERVICE_ENTITIES } from './entities';
import { SERVICE_MIGRATIONS } from './migrations';
import { AuditStoreConsumer } from './store/audit-store.consumer';

/** Append-only, hash-chained audit log: store, verify, checkpoints, query, export, archive (docs/audit.md). */
@Module({
  imports: [ServiceDatabaseModule.forService({ service: 'audit', entities: SERVICE_ENTITIES, migrations: SERVICE_MIGRATIONS })],
  controllers: [AuditController],
  providers: [AuditStoreConsumer, CheckpointService, AuditQueryService, AuditVisibilityClient],
  exports: [AuditStoreConsumer, CheckpointService],
})
export class AuditModule {}
