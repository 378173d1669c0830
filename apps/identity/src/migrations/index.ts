import { Init1795311845488 } from './1795311845488-init';
import { Directory1795313962831 } from './1795313962831-directory';
import { ApiKeyExplicitScopes1795400000000 } from './1795400000000-api-key-explicit-scopes';
import { HomeOrgInvitations1796189781435 } from './1796189781435-home-org-invitations';
import { PermissionChangeReceipts1796192086620 } from './1796192086620-permission-change-receipts';
import { ScimAttributes1796194284567 } from './1796194284567-scim-attributes';
import { OAuthServer1796204522820 } from './1796204522820-oauth-server';
import { OidcFederation1796204608919 } from './1796204608919-oidc-federation';

/** In order; never edit one that has shipped — add a new one (scripts/generate-migration.ts). */
export const SERVICE_MIGRATIONS = [
  Init1795311845488,
  Directory1795313962831,
  ApiKeyExplicitScopes1795400000000,
  HomeOrgInvitations1796189781435,
  PermissionChangeReceipts1796192086620,
  ScimAttributes1796194284567,
  OAuthServer1796204522820,
  OidcFederation1796204608919,
];
