import { OutboxEntity } from '@custodian/platform';
import { MembershipEntity } from './membership.entity';
import { OrganizationEntity } from './organization.entity';
import { SessionEntity } from './session.entity';
import { SigningKeyEntity } from './signing-key.entity';
import { UserEntity } from './user.entity';

export const SERVICE_ENTITIES = [OrganizationEntity, UserEntity, MembershipEntity, SessionEntity, SigningKeyEntity, OutboxEntity];
