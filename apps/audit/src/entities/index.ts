import { OutboxEntity } from '@custodian/platform';
import { AuditChainHeadEntity } from './audit-chain-head.entity';
import { AuditCheckpointEntity } from './audit-checkpoint.entity';
import { AuditDeadLetterEntity } from './audit-dead-letter.entity';
import { AuditEventArchiveEntity } from './audit-event-archive.entity';
import { AuditEventEntity } from './audit-event.entity';
import { AuditSigningKeyEntity } from './audit-signing-key.entity';

export const SERVICE_ENTITIES = [
  AuditEventEntity,
  AuditEventArchiveEntity,
  AuditChainHeadEntity,
  AuditCheckpointEntity,
  AuditSigningKeyEntity,
  AuditDeadLetterEntity,
  OutboxEntity,
];
