import { Inject, Injectable } from '@nestjs/common';
import {
  PERMISSION_CHANGE_CAPABILITY,
  type ApplyIdentityPermissionChange,
  type DescribePermissionChange,
  type DescribedPermissionChange,
  type PermissionChange,
  type PermissionChangeResult,
  type PrincipalSnapshot,
  type RequestOf,
} from '@custodian/contracts';
import { CustodianException, canonicalJson, contentHash, requestContext } from '@custodian/platform';
import type { PermissionSet } from '@custodian/policy';
import type { EntityManager } from 'typeorm';
import { PrincipalSnapshotService } from '../auth/principal-snapshot.service';
import { PermissionChangeReceiptEntity } from '../entities/permission-change-receipt.entity';
import { PermissionSetAssignmentEntity } from '../entities/permission-set-assignment.entity';
import { PermissionSetEntity } from '../entities/permission-set.entity';
import { RoleEntity } from '../entities/role.entity';
import { IdentityEvents } from '../events/identity-events.service';
import { conflict } from './directory.http';
import { PermissionSetsService } from './permission-sets.service';
import { RolesService } from './roles.service';

type DescribeRequest = RequestOf<typeof DescribePermissionChange>;
type ApplyRequest = RequestOf<typeof ApplyIdentityPermissionChange>;
type IdentityChange = Exclude<PermissionChange, { type: 'sharing_rule.upsert' }>;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
type Grantee = NonNullable<DescribeRequest['grantees']>[number];

/** Thrown inside a transaction to roll it back with this answer. */
class Answer extends Error {
  constructor(readonly result: PermissionChangeResult) {
    super(result.outcome);
  }
}

const OUTCOME_BY_CODE: Record<string, PermissionChangeResult['outcome']> = {
  not_found: 'not_found',
  forbidden: 'forbidden',
  conflict: 'conflict',
  validation_failed: 'invalid',
  bad_request: 'invalid',
};

/** What a change is computed on: its version, what reviewers are told it is about, and who it reaches. */
interface Target {
  version: string;
  target: Record<string, unknown>;
  /** SQL (params: $1 org id, then `params`) selecting the user ids the change reaches. */
  scope: { sql: string; params: unknown[] };
}

const SET_HOLDERS = `SELECT a.user_id FROM permission_set_assignment a WHERE a.org_id = $1 AND a.permission_set_id = $2 AND a.user_id IS NOT NULL
   UNION SELECT g.user_id FROM permission_set_assignment a JOIN group_member g ON g.org_id = a.org_id AND g.group_id = a.group_id
    WHERE a.org_id = $1 AND a.permission_set_id = $2`;
const GROUP_MEMBERS = 'SELECT user_id FROM group_member WHERE org_id = $1 AND group_id = $2';

/**
 * Permission changes proposed through approvals, on identity's side: who a change reaches and
 * their principal snapshots before and after it (the change applied in memory, nothing written),
 * and the apply of an approved change through the same service code the REST routes use.
 * Permission sets and roles have no version column; a content hash of what the change depends on
 * is their version, so an apply after anything moved is `stale`.
 */
@Injectable()
export class PermissionChangeService {
  constructor(
    @Inject(IdentityEvents) private readonly events: IdentityEvents,
    @Inject(PrincipalSnapshotService) private readonly snapshots: PrincipalSnapshotService,
    @Inject(PermissionSetsService) private readonly sets: PermissionSetsService,
    @Inject(RolesService) private readonly roles: RolesService,
  ) {}

  async describe(req: DescribeRequest): Promise<DescribedPermissionChange> {
    const empty = { policyVersion: 0, usersInScope: 0, sets: [], users: [] };
    try {
      return await this.events.read(async (m) => {
        const found =
          req.change.type === 'sharing_rule.upsert'
            ? { version: undefined, target: undefined, scope: granteeScope(req.grantees ?? []) }
            : await this.target(m, req.orgId, req.change);
        const rows: Array<{ userId: string; email: string; total: string }> = await m.query(
          `WITH scope AS (${found.scope.sql})
           SELECT m.user_id AS "userId", u.email, count(*) OVER () AS total
             FROM membership m JOIN user_account u ON u.id = m.user_id
            WHERE m.org_id = $1 AND u.active AND m.user_id IN (SELECT user_id FROM scope)
            ORDER BY m.user_id LIMIT ${Number(req.limit)}`,
          [req.orgId, ...found.scope.params],
        );
        const interned = new Map<string, number>();
        const bodies: PermissionSet[] = [];
        const intern = (body: PermissionSet): number => {
          const key = canonicalJson(body);
          let i = interned.get(key);
          if (i === undefined) {
            i = bodies.push(body) - 1;
            interned.set(key, i);
          }
          return i;
        };
        const after = await this.afterOf(
          m,
          req.orgId,
          req.change,
          rows.map((r) => r.userId),
        );
        const users: DescribedPermissionChange['users'] = [];
        let policyVersion = 0;
        for (const row of rows) {
          let snapshot: PrincipalSnapshot;
          try {
            snapshot = await this.snapshots.build({ userId: row.userId, orgId: req.orgId });
          } catch (error) {
            // A user who can no longer sign in holds no access before or after.
            if (error instanceof CustodianException && error.code === 'unauthenticated') continue;
            throw error;
          }
          policyVersion = Math.max(policyVersion, snapshot.policyVersion);
          const changed = after(snapshot);
          users.push({
            userId: row.userId,
            email: row.email,
            before: compact(snapshot.roleId, snapshot.ancestorRoleIds, snapshot.groupIds, snapshot.permissionSets.map(intern)),
            after: compact(snapshot.roleId, changed.ancestorRoleIds, snapshot.groupIds, changed.permissionSets.map(intern)),
          });
        }
        return {
          outcome: 'ok' as const,
          ...(found.version ? { version: found.version } : {}),
          ...(found.target ? { target: found.target } : {}),
          policyVersion,
          usersInScope: Number(rows[0]?.total ?? 0),
          sets: bodies,
          users,
        };
      });
    } catch (error) {
      if (error instanceof CustodianException && OUTCOME_BY_CODE[error.code])
        return { outcome: OUTCOME_BY_CODE[error.code] as 'not_found', code: error.code, message: error.message.slice(0, 2000), ...empty };
      throw error;
    }
  }

  /**
   * Applies an approved change as its requester, re-checked now (an agent never holds these
   * capabilities), when its target is unchanged; audited by the service method as a direct change
   * is. The receipt makes a retry answer the first result.
   */
  async apply(req: ApplyRequest): Promise<PermissionChangeResult> {
    const change = req.change;
    if (change.type === 'sharing_rule.upsert')
      return { outcome: 'invalid', code: 'validation_failed', message: 'Sharing rules are applied by objects' };
    let principal: PrincipalSnapshot;
    try {
      principal = await this.snapshots.build({
        userId: req.requester.userId,
        orgId: req.requester.orgId,
        ...(req.requester.agent ? { delegation: req.requester.agent } : {}),
      });
    } catch (error) {
      if (error instanceof CustodianException && ['unauthenticated', 'not_found', 'forbidden'].includes(error.code))
        return {
          outcome: 'forbidden',
          code: 'requester_inactive',
          message: 'The requester is no longer allowed to act in this organization',
        };
      throw error;
    }
    const capability = PERMISSION_CHANGE_CAPABILITY[change.type];
    if (principal.agent || !principal.capabilities.includes(capability))
      return { outcome: 'forbidden', code: 'missing_capability', message: `This change needs ${capability}` };
    const ctx = { requestId: requestContext.requestId() ?? `bus-${Date.now()}`, principal };
    return requestContext.run(ctx, async () => {
      try {
        return await this.events.transaction(async (m) => {
          const receipt = await m.findOne(PermissionChangeReceiptEntity, { where: { orgId: principal.orgId, key: req.idempotencyKey } });
          if (receipt) return receipt.response as PermissionChangeResult;
          if (change.type === 'role.move')
            await m.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`custodian:role-tree:${principal.orgId}`]);
          else await this.sets.find(m, principal.orgId, change.permissionSetId, true);
          const { version } = await this.target(m, principal.orgId, change);
          if (version !== req.expectedVersion)
            throw new Answer({
              outcome: 'stale',
              code: 'precondition_failed',
              message: 'The target has changed since the proposal',
              version,
            });
          await this.perform(m, principal, change);
          const result: PermissionChangeResult = { outcome: 'applied', version };
          await m.insert(PermissionChangeReceiptEntity, { orgId: principal.orgId, key: req.idempotencyKey, response: result });
          return result;
        });
      } catch (error) {
        if (error instanceof Answer) return error.result;
        if (error instanceof CustodianException && OUTCOME_BY_CODE[error.code])
          return { outcome: OUTCOME_BY_CODE[error.code], code: error.code, message: error.message.slice(0, 2000) };
        throw error;
      }
    });
  }

  /** The existing service code paths, in this transaction. */
  private async perform(m: EntityManager, actor: PrincipalSnapshot, change: IdentityChange): Promise<void> {
    switch (change.type) {
      case 'permission_set.update':
        await this.sets.replaceIn(m, actor, change.permissionSetId, change.body);
        return;
      case 'permission_set.assign':
        await this.sets.assignIn(
          m,
          actor,
          change.permissionSetId,
          'userId' in change ? { userId: change.userId } : { groupId: change.groupId },
        );
        return;
      case 'permission_set.unassign': {
        const row = await this.assignment(m, actor.orgId, change);
        await this.sets.unassignIn(m, actor, change.permissionSetId, row.id);
        return;
      }
      case 'role.move':
        await this.roles.updateIn(m, actor, change.roleId, { parentId: change.parentId });
        return;
    }
  }

  /** The change's target as it is now (404 / 409 as the direct route would answer). */
  private async target(m: EntityManager, orgId: string, change: IdentityChange): Promise<Target> {
    if (change.type === 'role.move') {
      const role = await this.roles.find(m, orgId, change.roleId);
      let parent: RoleEntity | null = null;
      let chain: string[] = [];
      if (change.parentId) {
        parent = await this.roles.find(m, orgId, change.parentId, 'Parent role');
        const cycle: unknown[] = await m.query('SELECT 1 FROM role_closure WHERE ancestor_id = $1 AND descendant_id = $2', [
          role.id,
          parent.id,
        ]);
        if (cycle.length > 0) throw conflict('A role cannot be moved under itself or one of its descendants');
        chain = await ancestorsOf(m, orgId, parent.id);
      }
      return {
        // The move's effect depends on where the role hangs now and where the new parent hangs.
        version: contentHash({ parentId: role.parentId, newParentChain: chain }),
        target: {
          role: { id: role.id, name: role.name, parentId: role.parentId },
          newParent: parent ? { id: parent.id, name: parent.name } : null,
        },
        scope: {
          // The subtree (its members' ancestors change), the old ancestors (they lose the subtree's
          // records) and the new parent with its ancestors (they gain them).
          sql: `SELECT user_id FROM membership WHERE org_id = $1 AND role_id IN (
                  SELECT descendant_id FROM role_closure WHERE org_id = $1 AND ancestor_id = $2
                  UNION SELECT ancestor_id FROM role_closure WHERE org_id = $1 AND descendant_id = $2
                  UNION SELECT ancestor_id FROM role_closure WHERE org_id = $1 AND descendant_id = $3)`,
          params: [role.id, parent?.id ?? role.id],
        },
      };
    }
    const set = await this.sets.find(m, orgId, change.permissionSetId);
    const version = contentHash({ name: set.name, body: set.body });
    // The capabilities the set carries: whoever proposes assigning it must hold them (checked at filing by objects).
    const capabilities = [...(set.body.systemCapabilities ?? []), ...(set.body.integrationCapabilities ?? [])];
    const about = { permissionSet: { id: set.id, name: set.name, capabilities } };
    if (change.type === 'permission_set.update') {
      if (change.body.name !== set.name) {
        const clash = await m.findOne(PermissionSetEntity, { where: { orgId, name: change.body.name } });
        if (clash) throw conflict('A permission set with this name exists');
      }
      return { version, target: about, scope: { sql: SET_HOLDERS, params: [set.id] } };
    }
    const to = 'userId' in change ? { userId: change.userId } : { groupId: change.groupId };
    if (change.type === 'permission_set.unassign') await this.assignment(m, orgId, change);
    else {
      const exists: unknown[] =
        'userId' in to
          ? await m.query('SELECT 1 FROM membership WHERE org_id = $1 AND user_id = $2', [orgId, to.userId])
          : await m.query('SELECT 1 FROM user_group WHERE org_id = $1 AND id = $2', [orgId, to.groupId]);
      if (exists.length === 0) throw CustodianException.notFound('userId' in to ? 'User not found' : 'Group not found');
      const assigned = await m.findOne(PermissionSetAssignmentEntity, {
        where: { orgId, permissionSetId: set.id, ...('userId' in to ? { userId: to.userId } : { groupId: to.groupId }) },
      });
      if (assigned) throw conflict('The permission set is already assigned there');
    }
    return {
      version,
      target: { ...about, ...to },
      scope: 'userId' in to ? { sql: 'SELECT $2::uuid AS user_id', params: [to.userId] } : { sql: GROUP_MEMBERS, params: [to.groupId] },
    };
  }

  private async assignment(
    m: EntityManager,
    orgId: string,
    change: Extract<PermissionChange, { type: 'permission_set.unassign' }>,
  ): Promise<PermissionSetAssignmentEntity> {
    const row = await m.findOne(PermissionSetAssignmentEntity, {
      where: {
        orgId,
        permissionSetId: change.permissionSetId,
        ...('userId' in change ? { userId: change.userId } : { groupId: change.groupId }),
      },
    });
    if (!row) throw CustodianException.notFound('Assignment not found');
    return row;
  }

  /**
   * How the change rewrites one user's snapshot in memory: the sets they would hold and the role
   * ancestors they would have. Facts that depend on other assignments or the tree are read once.
   */
  private async afterOf(
    m: EntityManager,
    orgId: string,
    change: PermissionChange,
    userIds: string[],
  ): Promise<(s: PrincipalSnapshot) => { permissionSets: PermissionSet[]; ancestorRoleIds: string[] }> {
    const same = (s: PrincipalSnapshot) => ({ permissionSets: s.permissionSets, ancestorRoleIds: s.ancestorRoleIds });
    switch (change.type) {
      case 'sharing_rule.upsert':
        return same;
      case 'permission_set.update': {
        const set = await this.sets.find(m, orgId, change.permissionSetId);
        return (s) => {
          const i = s.permissionSets.findIndex((p) => p.name === set.name);
          if (i < 0) return same(s);
          const sets = [...s.permissionSets];
          sets[i] = change.body;
          return { permissionSets: sets, ancestorRoleIds: s.ancestorRoleIds };
        };
      }
      case 'permission_set.assign': {
        const set = await this.sets.find(m, orgId, change.permissionSetId);
        // Holding the set already (through a group, say) leaves the snapshot as it is.
        return (s) =>
          s.permissionSets.some((p) => p.name === set.name)
            ? same(s)
            : { permissionSets: [...s.permissionSets, set.body], ancestorRoleIds: s.ancestorRoleIds };
      }
      case 'permission_set.unassign': {
        const set = await this.sets.find(m, orgId, change.permissionSetId);
        const removed = await this.assignment(m, orgId, change);
        const kept: Array<{ user_id: string }> = await m.query(
          `SELECT DISTINCT x.user_id FROM (
             SELECT a.user_id FROM permission_set_assignment a WHERE a.org_id = $1 AND a.permission_set_id = $2 AND a.id <> $3 AND a.user_id IS NOT NULL
             UNION SELECT g.user_id FROM permission_set_assignment a JOIN group_member g ON g.org_id = a.org_id AND g.group_id = a.group_id
              WHERE a.org_id = $1 AND a.permission_set_id = $2 AND a.id <> $3) x
            WHERE x.user_id = ANY($4::uuid[])`,
          [orgId, set.id, removed.id, userIds],
        );
        const stillHolds = new Set(kept.map((k) => k.user_id));
        return (s) =>
          stillHolds.has(s.userId)
            ? same(s)
            : { permissionSets: s.permissionSets.filter((p) => p.name !== set.name), ancestorRoleIds: s.ancestorRoleIds };
      }
      case 'role.move': {
        // Members of the moved subtree keep their ancestors inside it and hang below the new parent's chain.
        const inside: Array<{ descendant_id: string; ancestor_id: string }> = await m.query(
          `SELECT descendant_id, ancestor_id FROM role_closure
            WHERE org_id = $1 AND depth > 0
              AND descendant_id IN (SELECT descendant_id FROM role_closure WHERE org_id = $1 AND ancestor_id = $2)
              AND ancestor_id IN (SELECT descendant_id FROM role_closure WHERE org_id = $1 AND ancestor_id = $2)
            ORDER BY descendant_id, depth`,
          [orgId, change.roleId],
        );
        const inner = new Map<string, string[]>();
        for (const r of inside) inner.set(r.descendant_id, [...(inner.get(r.descendant_id) ?? []), r.ancestor_id]);
        const subtree: Array<{ descendant_id: string }> = await m.query(
          'SELECT descendant_id FROM role_closure WHERE org_id = $1 AND ancestor_id = $2',
          [orgId, change.roleId],
        );
        const moved = new Set(subtree.map((r) => r.descendant_id));
        const chain = change.parentId ? [change.parentId, ...(await ancestorsOf(m, orgId, change.parentId))] : [];
        return (s) =>
          s.roleId && moved.has(s.roleId)
            ? { permissionSets: s.permissionSets, ancestorRoleIds: [...(inner.get(s.roleId) ?? []), ...chain] }
            : same(s);
      }
    }
  }
}

/** Proper ancestors of a role, nearest first (as the principal snapshot lists them). */
async function ancestorsOf(m: EntityManager, orgId: string, roleId: string): Promise<string[]> {
  const rows: Array<{ ancestor_id: string }> = await m.query(
    'SELECT ancestor_id FROM role_closure WHERE org_id = $1 AND descendant_id = $2 AND depth > 0 ORDER BY depth',
    [orgId, roleId],
  );
  return rows.map((r) => r.ancestor_id);
}

/** The members a sharing rule's grantees reach: a user, a group's members, a role's, a role subtree's. */
function granteeScope(grantees: Grantee[]): { sql: string; params: unknown[] } {
  const parts: string[] = [];
  const params: unknown[] = [];
  // Grantee ids are opaque strings in a rule; only uuids can name a member, group or role here.
  for (const g of grantees.filter((x) => UUID.test(x.id))) {
    params.push(g.id);
    const p = `$${params.length + 1}`;
    if (g.type === 'user') parts.push(`SELECT ${p}::uuid AS user_id`);
    else if (g.type === 'group') parts.push(`SELECT user_id FROM group_member WHERE org_id = $1 AND group_id = ${p}::uuid`);
    else if (g.type === 'role') parts.push(`SELECT user_id FROM membership WHERE org_id = $1 AND role_id = ${p}::uuid`);
    else
      parts.push(
        `SELECT user_id FROM membership WHERE org_id = $1 AND role_id IN (SELECT descendant_id FROM role_closure WHERE org_id = $1 AND ancestor_id = ${p}::uuid)`,
      );
  }
  return { sql: parts.length > 0 ? parts.join(' UNION ') : 'SELECT NULL::uuid AS user_id WHERE FALSE', params };
}

function compact(roleId: string | null, ancestorRoleIds: string[], groupIds: string[], sets: number[]) {
  return { roleId, ancestorRoleIds, groupIds, sets };
}
