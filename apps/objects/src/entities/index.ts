import { OutboxEntity } from '@custodian/platform';
import { DirectoryReplicaStateEntity, GroupMemberEntity, RoleClosureEntity, RoleParentEntity, UserRoleEntity } from './directory.entities';
import { IdempotencyKeyEntity } from './idempotency-key.entity';
import { ObjectActionEntity } from './object-action.entity';
import { ObjectDefinitionEntity } from './object-definition.entity';
import { RecordShareEntity } from './record-share.entity';

export const SERVICE_ENTITIES = [
  ObjectDefinitionEntity,
  OutboxEntity,
  UserRoleEntity,
  RoleParentEntity,
  RoleClosureEntity,
  GroupMemberEntity,
  DirectoryReplicaStateEntity,
  RecordShareEntity,
  IdempotencyKeyEntity,
  ObjectActionEntity,
];
