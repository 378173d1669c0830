import { Module } from '@nestjs/common';
import { ServiceDatabaseModule } from '@custodian/platform';
import { SERVICE_ENTITIES } from './entities';
import { SERVICE_MIGRATIONS } from './migrations';

/** Pending-action queue with review and separation of duties (its own issue builds it out). */
@Module({
  imports: [ServiceDatabaseModule.forService({ service: 'approvals', entities: SERVICE_ENTITIES, migrations: SERVICE_MIGRATIONS })],
})
export class ApprovalsModule {}
