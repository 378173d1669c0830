import { Inject, Injectable } from '@nestjs/common';
import {
  ErrorCode,
  type ApplyIdentityBundle,
  type BundleChange,
  type PrincipalSnapshot,
  type RequestOf,
  type ResponseOf,
} from '@custodian/contracts';
import { CustodianException, OutboxWriter, canonicalJson, missingCapabilities, requestContext, type Capability } from '@custodian/platform';
import type { PermissionSet } from '@custodian/policy';
import type { EntityManager } from 'typeorm';
import { PrincipalSnapshotService } from '../auth/principal-snapshot.service';
import { GroupEntity } from '../entities/group.entity';
import { PermissionSetEntity } from '../entities/permission-set.entity';
import { RoleEntity } from '../entities/role.entity';
import { IdentityEvents } from '../events/identity-events.service';
import { GroupsService } from '../directory/groups.service';
import { PermissionSetsService } from '../directory/permission-sets.service';
import { RolesService } from '../directory/roles.service';

type Request = RequestOf<typeof ApplyIdentityBundle>;
type Result = ResponseOf<typeof ApplyIdentityBundle>;
type BundleRole = Request['roles'][number];

/** The capabilities identity's REST routes require for each section (directory/*.controller.ts). */
export const SECTION_CAPABILITIES: ReadonlyArray<{ section: 'roles' | 'groups' | 'permissionSets'; capability: Capability }> = [
  { section: 'roles', capability: 'manage_roles' },
  { section: 'groups', capability: 'manage_users' },
  { section: 'permissionSets', capability: 'manage_permissions' },
];

class DryRunRollback extends Error {
  constructor(readonly result: Result) {
    super('dry run');
  }
}

function invalid(message: string, path: string): CustodianException {
  return new CustodianException(ErrorCode.ValidationFailed, message, { issues: [{ path, message }] });
}

function uniqueNames(items: ReadonlyArray<{ name: string }>, section: string): void {
  const seen = new Set<string>();
  items.forEach((item, i) => {
    if (seen.has(item.name)) throw invalid(`Duplicate name ${item.name}`, `/${section}/${i}/name`);
    seen.add(item.name);
  });
}

/** Bundle roles parent-first; a parent may also be an existing role. A cycle is a validation error. */
export function rolesInDependencyOrder(roles: readonly BundleRole[], existing: ReadonlySet<string>): BundleRole[] {
  const byName = new Map(roles.map((r, i) => [r.name, { role: r, index: i }]));
  const done = new Set<string>();
  const out: BundleRole[] = [];
  const visit = (name: string, path: Set<string>): void => {
    if (done.has(name)) return;
    const entry = byName.get(name)!;
    if (path.has(name)) throw invalid(`Roles form a cycle (${[...path, name].join(' > ')})`, `/roles/${entry.index}/parent`);
    path.add(name);
    const parent = entry.role.parent;
    if (parent !== undefined) {
      if (byName.has(parent)) visit(parent, path);
      else if (!existing.has(parent)) throw invalid(`Unknown parent role ${parent}`, `/roles/${entry.index}/parent`);
    }
    path.delete(name);
    done.add(name);
    out.push(entry.role);
  };
  for (const r of roles) visit(r.name, new Set());
  return out;
}

/**
 * Applies the identity sections of a bundle (roles, groups, permission sets) in ONE transaction,
 * idempotently by name, through the same service methods as the REST routes — so audit events,
 * policy-version bumps and directory events are exactly theirs. The caller's principal is rebuilt
 * from its ids here (not taken from the message) and must hold what the REST routes require.
 */
@Injectable()
export class IdentityBundleService {
  constructor(
    @Inject(IdentityEvents) private readonly events: IdentityEvents,
    @Inject(PrincipalSnapshotService) private readonly snapshots: PrincipalSnapshotService,
    @Inject(RolesService) private readonly roles: RolesService,
    @Inject(GroupsService) private readonly groups: GroupsService,
    @Inject(PermissionSetsService) private readonly sets: PermissionSetsService,
    @Inject(OutboxWriter) private readonly outbox: OutboxWriter,
  ) {}

  async apply(req: Request): Promise<Result> {
    const principal = await this.snapshots.build({
      userId: req.actor.userId,
      orgId: req.orgId,
      ...(req.actor.sessionId ? { sessionId: req.actor.sessionId } : {}),
      ...(req.actor.apiKeyId ? { apiKeyId: req.actor.apiKeyId } : {}),
    });
    const ctx = { requestId: requestContext.requestId() ?? `bus-${Date.now()}`, principal };
    return requestContext.run(ctx, async () => {
      await this.authorize(principal, req);
      uniqueNames(req.roles, 'roles');
      uniqueNames(req.groups, 'groups');
      uniqueNames(req.permissionSets, 'permissionSets');
      try {
        return await this.events.transaction(async (m) => {
          const result = await this.applyIn(m, principal, req);
          if (req.dryRun) throw new DryRunRollback(result);
          return result;
        });
      } catch (error) {
        if (error instanceof DryRunRollback) return error.result;
        throw error;
      }
    });
  }

  /** Every non-empty section needs its REST capability, decided by the policy library like the route guard. */
  private async authorize(principal: PrincipalSnapshot, req: Request): Promise<void> {
    const missing = missingCapabilities(
      principal,
      SECTION_CAPABILITIES.filter((s) => req[s.section].length > 0).map((s) => s.capability),
    );
    if (missing.length === 0) return;
    await this.events.transaction((m) =>
      this.outbox.append(m, {
        orgId: principal.orgId,
        action: 'authz.denied',
        outcome: 'denied',
        target: { type: 'bundle' },
        details: { reason: 'forbidden', missingCapabilities: missing, route: 'bus identity.bundle.apply' },
      }),
    );
    throw CustodianException.forbidden('Missing capability', { missing });
  }

  private async applyIn(m: EntityManager, actor: PrincipalSnapshot, req: Request): Promise<Result> {
    const orgId = actor.orgId;
    const changes: BundleChange[] = [];
    // Roles: the tree lock is taken by the first role write; reading first is fine inside the transaction.
    const current = await m.find(RoleEntity, { where: { orgId } });
    const byName = new Map(current.map((r) => [r.name, r]));
    const nameOf = new Map(current.map((r) => [r.id, r.name]));
    const roleIds: Record<string, string> = Object.fromEntries(current.map((r) => [r.name, r.id]));
    for (const role of rolesInDependencyOrder(req.roles, new Set(byName.keys()))) {
      const parentId = role.parent === undefined ? null : roleIds[role.parent];
      const existing = byName.get(role.name);
      const after = { name: role.name, parent: role.parent ?? null };
      if (!existing) {
        const created = await this.roles.createIn(m, actor, { name: role.name, parentId });
        roleIds[role.name] = created.id;
        nameOf.set(created.id, role.name);
        changes.push({ kind: 'role', name: role.name, id: created.id, change: 'create', after });
      } else if (existing.parentId !== parentId) {
        await this.roles.updateIn(m, actor, existing.id, { parentId });
        const before = { name: role.name, parent: existing.parentId ? (nameOf.get(existing.parentId) ?? existing.parentId) : null };
        changes.push({ kind: 'role', name: role.name, id: existing.id, change: 'update', before, after });
      } else {
        changes.push({ kind: 'role', name: role.name, id: existing.id, change: 'unchanged' });
      }
    }

    const groups = new Map((await m.find(GroupEntity, { where: { orgId } })).map((g) => [g.name, g]));
    const groupIds: Record<string, string> = Object.fromEntries([...groups.values()].map((g) => [g.name, g.id]));
    for (const group of req.groups) {
      const existing = groups.get(group.name);
      if (!existing) {
        groupIds[group.name] = (await this.groups.createIn(m, actor, group)).id;
        changes.push({
          kind: 'group',
          name: group.name,
          id: groupIds[group.name],
          change: 'create',
          after: { description: group.description ?? '' },
        });
      } else if (group.description !== undefined && group.description !== existing.description) {
        await this.groups.updateIn(m, actor, existing.id, { description: group.description });
        changes.push({
          kind: 'group',
          name: group.name,
          id: existing.id,
          change: 'update',
          before: { description: existing.description },
          after: { description: group.description },
        });
      } else {
        changes.push({ kind: 'group', name: group.name, id: existing.id, change: 'unchanged' });
      }
    }

    const sets = new Map((await m.find(PermissionSetEntity, { where: { orgId } })).map((s) => [s.name, s]));
    for (const set of req.permissionSets as PermissionSet[]) {
      const existing = sets.get(set.name);
      if (!existing) {
        const created = await this.sets.createIn(m, actor, set);
        changes.push({ kind: 'permission_set', name: set.name, id: created.id, change: 'create', after: set });
      } else if (canonicalJson(existing.body) !== canonicalJson(set)) {
        await this.sets.replaceIn(m, actor, existing.id, set);
        changes.push({ kind: 'permission_set', name: set.name, id: existing.id, change: 'update', before: existing.body, after: set });
      } else {
        changes.push({ kind: 'permission_set', name: set.name, id: existing.id, change: 'unchanged' });
      }
    }
    return { changes, roleIds, groupIds };
  }
}
