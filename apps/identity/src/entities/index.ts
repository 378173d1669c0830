import { OutboxEntity } from '@custodian/platform';
import { ApiKeyEntity } from './api-key.entity';
import { GroupMemberEntity } from './group-member.entity';
import { GroupEntity } from './group.entity';
import { IdentityEventEntity } from './identity-event.entity';
import { InvitationEntity } from './invitation.entity';
import { LoginThrottleEntity } from './login-throttle.entity';
import { MembershipEntity } from './membership.entity';
import { OrganizationEntity } from './organization.entity';
import { PermissionChangeReceiptEntity } from './permission-change-receipt.entity';
import { PermissionSetAssignmentEntity } from './permission-set-assignment.entity';
import { PermissionSetEntity } from './permission-set.entity';
import { RoleClosureEntity } from './role-closure.entity';
import { RoleEntity } from './role.entity';
import { OAuthConsentEntity, OAuthModelEntity } from '../oauth-server/oauth.entities';
import { FEDERATION_ENTITIES } from '../federation/oidc.entities';
import { ScimGroupEntity, ScimUserEntity } from '../scim/scim.entities';
import { SessionEntity } from './session.entity';
import { SigningKeyEntity } from './signing-key.entity';
import { UserEntity } from './user.entity';

export const SERVICE_ENTITIES = [
  OrganizationEntity,
  UserEntity,
  MembershipEntity,
  InvitationEntity,
  SessionEntity,
  SigningKeyEntity,
  RoleEntity,
  RoleClosureEntity,
  GroupEntity,
  GroupMemberEntity,
  PermissionSetEntity,
  PermissionSetAssignmentEntity,
  PermissionChangeReceiptEntity,
  ApiKeyEntity,
  ScimUserEntity,
  ScimGroupEntity,
  OAuthModelEntity,
  OAuthConsentEntity,
  ...FEDERATION_ENTITIES,
  LoginThrottleEntity,
  IdentityEventEntity,
  OutboxEntity,
];
