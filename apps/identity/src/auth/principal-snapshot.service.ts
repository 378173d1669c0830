import { Inject, Injectable } from '@nestjs/common';
import { type GetPrincipalSnapshot, type PrincipalSnapshot, type RequestOf } from '@custodian/contracts';
import { CustodianException } from '@custodian/platform';
import {
  AGENT_SCOPES,
  INTEGRATION_CAPABILITIES,
  SYSTEM_CAPABILITIES,
  agentKeepsCapability,
  type AgentScope,
  type PermissionSet,
} from '@custodian/policy';
import type { EntityManager } from 'typeorm';
import { ApiKeyEntity } from '../entities/api-key.entity';
import { MembershipEntity } from '../entities/membership.entity';
import { OrganizationEntity } from '../entities/organization.entity';
import { SessionEntity } from '../entities/session.entity';
import { UserEntity } from '../entities/user.entity';
import { IdentityEvents } from '../events/identity-events.service';

/** Name of the synthetic set that carries a membership's direct capabilities into the snapshot. */
export const MEMBERSHIP_SET_NAME = 'membership:capabilities';
const SYSTEM = new Set<string>(SYSTEM_CAPABILITIES);
const INTEGRATION = new Set<string>(INTEGRATION_CAPABILITIES);

/**
 * Builds what every decision point needs: the merged permission sets (direct + via groups),
 * capabilities, role and ancestors (nearest first), groups and the policy version — and refuses
 * when the user, membership, session or API key is no longer valid.
 */
@Injectable()
export class PrincipalSnapshotService {
  constructor(@Inject(IdentityEvents) private readonly events: IdentityEvents) {}

  build(req: RequestOf<typeof GetPrincipalSnapshot>): Promise<PrincipalSnapshot> {
    return this.events.read(async (m) => {
      const { user, membership, org } = await loadActivePrincipal(m, req);
      let expiresAt = req.sessionId ? await checkSession(m, req.sessionId, user.id, org.id) : undefined;
      let keyScopes: string[] | undefined;
      if (req.apiKeyId) {
        const key = await checkApiKey(m, req.apiKeyId, user.id, org.id);
        keyScopes = key.scopes;
        if (key.expiresAt && (!expiresAt || key.expiresAt < expiresAt)) expiresAt = key.expiresAt;
      }
      const ancestorRoleIds = await loadAncestorRoleIds(m, org.id, membership.roleId);
      const groupIds = await loadGroupIds(m, org.id, user.id);
      const permissionSets = narrowForCredential(
        withMembershipSet(await loadPermissionSets(m, org.id, user.id), membership.capabilities),
        keyScopes,
        req.delegation?.scopes,
      );
      return {
        userId: user.id,
        orgId: org.id,
        email: user.email,
        ...(req.sessionId ? { sessionId: req.sessionId } : {}),
        ...(req.apiKeyId ? { apiKeyId: req.apiKeyId } : {}),
        capabilities: capabilitiesOf(permissionSets),
        roleId: membership.roleId,
        ancestorRoleIds,
        groupIds,
        policyVersion: org.policyVersion,
        permissionSets,
        ...(req.delegation
          ? {
              agent: {
                clientId: req.delegation.clientId,
                name: req.delegation.name,
                scopes: req.delegation.scopes.filter((s): s is AgentScope => (AGENT_SCOPES as readonly string[]).includes(s)),
              },
            }
          : {}),
        ...(keyScopes ? { apiKeyScopes: keyScopes } : {}),
        ...(expiresAt ? { credentialExpiresAt: expiresAt.toISOString() } : {}),
      };
    });
  }
}

type SnapshotRequest = RequestOf<typeof GetPrincipalSnapshot>;

/** The user (active), their membership of the org and the org itself; 401 when any is missing. */
async function loadActivePrincipal(
  m: EntityManager,
  req: SnapshotRequest,
): Promise<{ user: UserEntity; membership: MembershipEntity; org: OrganizationEntity }> {
  const [user, membership, org] = await Promise.all([
    m.findOne(UserEntity, { where: { id: req.userId } }),
    m.findOne(MembershipEntity, { where: { userId: req.userId, orgId: req.orgId } }),
    m.findOne(OrganizationEntity, { where: { id: req.orgId } }),
  ]);
  if (!user || !user.active || !membership || !org) throw CustodianException.unauthenticated('Unknown or inactive principal');
  return { user, membership, org };
}

/** The session is this user's in this org, not revoked and not expired; answers when it expires. */
async function checkSession(m: EntityManager, sessionId: string, userId: string, orgId: string): Promise<Date> {
  const session = await m.findOne(SessionEntity, { where: { id: sessionId } });
  if (
    !session ||
    session.userId !== userId ||
    session.orgId !== orgId ||
    session.revokedAt !== null ||
    session.expiresAt.getTime() <= Date.now()
  ) {
    throw CustodianException.unauthenticated('Session is no longer valid');
  }
  return session.expiresAt;
}

/** The API key is this user's in this org, not revoked and not expired. */
async function checkApiKey(m: EntityManager, apiKeyId: string, userId: string, orgId: string): Promise<ApiKeyEntity> {
  const key = await m.findOne(ApiKeyEntity, { where: { id: apiKeyId } });
  if (
    !key ||
    key.userId !== userId ||
    key.orgId !== orgId ||
    key.revokedAt !== null ||
    (key.expiresAt && key.expiresAt.getTime() <= Date.now())
  ) {
    throw CustodianException.unauthenticated('API key is no longer valid');
  }
  return key;
}

/** The role's ancestors, nearest first (none without a role). */
async function loadAncestorRoleIds(m: EntityManager, orgId: string, roleId: string | null): Promise<string[]> {
  if (!roleId) return [];
  const rows: Array<{ ancestor_id: string }> = await m.query(
    'SELECT ancestor_id FROM role_closure WHERE descendant_id = $1 AND org_id = $2 AND depth > 0 ORDER BY depth',
    [roleId, orgId],
  );
  return rows.map((a) => a.ancestor_id);
}

/** The groups the user is a member of in the org. */
async function loadGroupIds(m: EntityManager, orgId: string, userId: string): Promise<string[]> {
  const rows: Array<{ group_id: string }> = await m.query(
    'SELECT group_id FROM group_member WHERE org_id = $1 AND user_id = $2 ORDER BY group_id LIMIT 10000',
    [orgId, userId],
  );
  return rows.map((g) => g.group_id);
}

/** The permission sets assigned to the user, directly or through a group, by name. */
async function loadPermissionSets(m: EntityManager, orgId: string, userId: string): Promise<PermissionSet[]> {
  const sets: Array<{ body: PermissionSet }> = await m.query(
    `SELECT ps.body FROM permission_set ps
      WHERE ps.org_id = $1 AND EXISTS (
        SELECT 1 FROM permission_set_assignment a
         WHERE a.permission_set_id = ps.id AND a.org_id = $1
           AND (a.user_id = $2 OR a.group_id IN (SELECT g.group_id FROM group_member g WHERE g.org_id = $1 AND g.user_id = $2)))
      ORDER BY ps.name LIMIT 999`,
    [orgId, userId],
  );
  return sets.map((s) => s.body);
}

/** The membership's direct capabilities, carried as one synthetic set after the assigned ones. */
function withMembershipSet(sets: PermissionSet[], capabilities: string[]): PermissionSet[] {
  if (capabilities.length === 0) return sets;
  return [
    ...sets,
    {
      name: MEMBERSHIP_SET_NAME,
      systemCapabilities: capabilities.filter((c) => SYSTEM.has(c)) as PermissionSet['systemCapabilities'],
      integrationCapabilities: capabilities.filter((c) => INTEGRATION.has(c)) as PermissionSet['integrationCapabilities'],
    },
  ];
}

/**
 * An API key carries exactly its stored scopes (an empty list carries none; keys are created with
 * their capabilities written out), and an agent acting for the user only integration capabilities.
 * Both narrowings apply together: an agent acting through a key gets their intersection.
 */
function narrowForCredential(sets: PermissionSet[], keyScopes: string[] | undefined, agentScopes: string[] | undefined): PermissionSet[] {
  let out = sets;
  if (keyScopes) out = out.map((s) => narrow(s, new Set(keyScopes)));
  // An agent keeps only what its scopes carry (the policy library's table): never an administrative capability.
  if (agentScopes) out = out.map((s) => narrowBy(s, (c) => agentKeepsCapability(c, agentScopes)));
  return out;
}

/** Every capability the sets carry, once each, sorted. */
function capabilitiesOf(sets: PermissionSet[]): string[] {
  return [...new Set(sets.flatMap((s) => [...(s.systemCapabilities ?? []), ...(s.integrationCapabilities ?? [])]))].sort();
}

/**
 * Every capability a user holds in any org they belong to (membership capabilities and permission
 * sets, directly or through groups), whether or not the account is active right now: what a
 * session as that user could carry. Used where someone else would obtain such a session.
 */
export async function heldCapabilities(m: EntityManager, userId: string): Promise<string[]> {
  const rows: Array<{ c: string }> = await m.query(
    `SELECT unnest(capabilities) AS c FROM membership WHERE user_id = $1
     UNION
     SELECT jsonb_array_elements_text(
              COALESCE(ps.body -> 'systemCapabilities', '[]'::jsonb) || COALESCE(ps.body -> 'integrationCapabilities', '[]'::jsonb))
       FROM permission_set ps
       JOIN permission_set_assignment a ON a.permission_set_id = ps.id AND a.org_id = ps.org_id
      WHERE EXISTS (SELECT 1 FROM membership mm WHERE mm.user_id = $1 AND mm.org_id = ps.org_id)
        AND (a.user_id = $1 OR a.group_id IN (SELECT g.group_id FROM group_member g WHERE g.org_id = a.org_id AND g.user_id = $1))`,
    [userId],
  );
  return rows
    .map((r) => r.c)
    .filter((c) => SYSTEM.has(c) || INTEGRATION.has(c))
    .sort();
}

function narrow(set: PermissionSet, allowed: ReadonlySet<string>): PermissionSet {
  return narrowBy(set, (c) => allowed.has(c));
}

function narrowBy(set: PermissionSet, keep: (capability: string) => boolean): PermissionSet {
  const out: PermissionSet = { ...set };
  if (set.systemCapabilities) out.systemCapabilities = set.systemCapabilities.filter(keep);
  if (set.integrationCapabilities) out.integrationCapabilities = set.integrationCapabilities.filter(keep);
  return out;
}
