import { OutboxEntity } from '@custodian/platform';
import { AuditEventEntity } from './audit-event.entity';

export const SERVICE_ENTITIES = [AuditEventEntity, OutboxEntity];
