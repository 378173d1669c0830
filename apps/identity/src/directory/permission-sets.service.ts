import { randomUUID } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import type { PrincipalSnapshot } from '@custodian/contracts';
import { CustodianException, OutboxWriter } from '@custodian/platform';
import type { PermissionSet } from '@custodian/policy';
import type { EntityManager } from 'typeorm';
import { GroupEntity } from '../entities/group.entity';
import { MembershipEntity } from '../entities/membership.entity';
import { PermissionSetAssignmentEntity } from '../entities/permission-set-assignment.entity';
import { PermissionSetEntity } from '../entities/permission-set.entity';
import { IdentityEvents } from '../events/identity-events.service';
import { conflictOnDuplicate, pageResult, type Page, type PageOf } from './directory.http';

export interface PermissionSetView {
  id: string;
  name: string;
  body: PermissionSet;
  createdAt: string;
  updatedAt: string;
}

export interface AssignmentView {
  id: string;
  permissionSetId: string;
  userId: string | null;
  groupId: string | null;
  createdAt: string;
}

const view = (s: PermissionSetEntity): PermissionSetView => ({
  id: s.id,
  name: s.name,
  body: s.body,
  createdAt: s.createdAt.toISOString(),
  updatedAt: s.updatedAt.toISOString(),
});
const assignmentView = (a: PermissionSetAssignmentEntity): AssignmentView => ({
  id: a.id,
  permissionSetId: a.permissionSetId,
  userId: a.userId,
  groupId: a.groupId,
  createdAt: a.createdAt.toISOString(),
});

/** Permission sets (bodies in the policy library's shape) and their assignments to users or groups. */
@Injectable()
export class PermissionSetsService {
  constructor(
    @Inject(IdentityEvents) private readonly events: IdentityEvents,
    @Inject(OutboxWriter) private readonly outbox: OutboxWriter,
  ) {}

  async list(orgId: string, page: Page): Promise<PageOf<PermissionSetView>> {
    const rows = await this.events.read((m) =>
      m.find(PermissionSetEntity, { where: { orgId }, order: { name: 'ASC', id: 'ASC' }, take: page.limit + 1, skip: page.offset }),
    );
    return pageResult(rows.map(view), page);
  }

  async get(orgId: string, id: string): Promise<PermissionSetView> {
    return view(await this.events.read((m) => this.find(m, orgId, id)));
  }

  create(actor: PrincipalSnapshot, body: PermissionSet): Promise<PermissionSetView> {
    return this.events.transaction((m) => this.createIn(m, actor, body));
  }

  /** Creates inside the caller's transaction (bundles apply many changes in one). */
  async createIn(m: EntityManager, actor: PrincipalSnapshot, body: PermissionSet): Promise<PermissionSetView> {
    await this.checkGrantable(actor, body);
    const set = m.create(PermissionSetEntity, { id: randomUUID(), orgId: actor.orgId, name: body.name, body });
    await conflictOnDuplicate(m.insert(PermissionSetEntity, set), 'A permission set with this name exists');
    const saved = await this.find(m, actor.orgId, set.id);
    await this.outbox.append(m, {
      orgId: actor.orgId,
      action: 'identity.permission_set.created',
      outcome: 'success',
      target: { type: 'permission_set', id: set.id },
      details: { after: view(saved) },
    });
    return view(saved);
  }

  replace(actor: PrincipalSnapshot, id: string, body: PermissionSet): Promise<PermissionSetView> {
    return this.events.transaction((m) => this.replaceIn(m, actor, id, body));
  }

  async replaceIn(m: EntityManager, actor: PrincipalSnapshot, id: string, body: PermissionSet): Promise<PermissionSetView> {
    const before = await this.find(m, actor.orgId, id, true);
    await this.checkGrantable(actor, body);
    await conflictOnDuplicate(
      m.query('UPDATE permission_set SET name = $2, body = $3::jsonb, updated_at = now() WHERE id = $1', [
        id,
        body.name,
        JSON.stringify(body),
      ]),
      'A permission set with this name exists',
    );
    const after = await this.find(m, actor.orgId, id);
    const version = await this.events.policyChanged(m, actor.orgId, 'permission_set.updated', false);
    await this.outbox.append(m, {
      orgId: actor.orgId,
      action: 'identity.permission_set.updated',
      outcome: 'success',
      target: { type: 'permission_set', id },
      details: { before: view(before), after: view(after), policyVersion: version },
    });
    return view(after);
  }

  async remove(actor: PrincipalSnapshot, id: string): Promise<void> {
    await this.events.transaction(async (m) => {
      const before = await this.find(m, actor.orgId, id, true);
      const deleted = await m.delete(PermissionSetAssignmentEntity, { permissionSetId: id, orgId: actor.orgId });
      await m.delete(PermissionSetEntity, { id });
      const version = await this.events.policyChanged(m, actor.orgId, 'permission_set.deleted', false);
      await this.outbox.append(m, {
        orgId: actor.orgId,
        action: 'identity.permission_set.deleted',
        outcome: 'success',
        target: { type: 'permission_set', id },
        details: { before: { ...view(before), assignmentCount: deleted.affected ?? 0 }, policyVersion: version },
      });
    });
  }

  async assignments(orgId: string, id: string, page: Page): Promise<PageOf<AssignmentView>> {
    return this.events.read(async (m) => {
      await this.find(m, orgId, id);
      const rows = await m.find(PermissionSetAssignmentEntity, {
        where: { permissionSetId: id, orgId },
        order: { createdAt: 'ASC', id: 'ASC' },
        take: page.limit + 1,
        skip: page.offset,
      });
      return pageResult(rows.map(assignmentView), page);
    });
  }

  assign(actor: PrincipalSnapshot, id: string, to: { userId: string } | { groupId: string }): Promise<AssignmentView> {
    return this.events.transaction((m) => this.assignIn(m, actor, id, to));
  }

  /** Assigns inside the caller's transaction (an approved permission change is applied here). */
  async assignIn(
    m: EntityManager,
    actor: PrincipalSnapshot,
    id: string,
    to: { userId: string } | { groupId: string },
  ): Promise<AssignmentView> {
    const set = await this.find(m, actor.orgId, id, true);
    await this.checkGrantable(actor, set.body);
    if ('userId' in to) {
      if (!(await m.findOne(MembershipEntity, { where: { orgId: actor.orgId, userId: to.userId } })))
        throw CustodianException.notFound('User not found');
    } else if (!(await m.findOne(GroupEntity, { where: { orgId: actor.orgId, id: to.groupId } }))) {
      throw CustodianException.notFound('Group not found');
    }
    const row = m.create(PermissionSetAssignmentEntity, {
      id: randomUUID(),
      orgId: actor.orgId,
      permissionSetId: id,
      userId: 'userId' in to ? to.userId : null,
      groupId: 'groupId' in to ? to.groupId : null,
    });
    await conflictOnDuplicate(m.insert(PermissionSetAssignmentEntity, row), 'The permission set is already assigned there');
    const saved = await m.findOneOrFail(PermissionSetAssignmentEntity, { where: { id: row.id } });
    const version = await this.events.policyChanged(m, actor.orgId, 'permission_set.assigned', false);
    await this.outbox.append(m, {
      orgId: actor.orgId,
      action: 'identity.permission_set.assigned',
      outcome: 'success',
      target: { type: 'permission_set', id },
      details: { after: assignmentView(saved), policyVersion: version },
    });
    return assignmentView(saved);
  }

  async unassign(actor: PrincipalSnapshot, id: string, assignmentId: string): Promise<void> {
    await this.events.transaction((m) => this.unassignIn(m, actor, id, assignmentId));
  }

  /** Removes an assignment inside the caller's transaction (an approved permission change is applied here). */
  async unassignIn(m: EntityManager, actor: PrincipalSnapshot, id: string, assignmentId: string): Promise<void> {
    await this.find(m, actor.orgId, id, true);
    const row = await m.findOne(PermissionSetAssignmentEntity, { where: { id: assignmentId, permissionSetId: id, orgId: actor.orgId } });
    if (!row) throw CustodianException.notFound('Assignment not found');
    await m.delete(PermissionSetAssignmentEntity, { id: assignmentId });
    const version = await this.events.policyChanged(m, actor.orgId, 'permission_set.unassigned', false);
    await this.outbox.append(m, {
      orgId: actor.orgId,
      action: 'identity.permission_set.unassigned',
      outcome: 'success',
      target: { type: 'permission_set', id },
      details: { before: assignmentView(row), policyVersion: version },
    });
  }

  /**
   * A set's capabilities become its holders' capabilities: whoever writes or assigns a set may only
   * put capabilities in it that their own credential holds (the same rule as membership grants), so
   * `manage_permissions` cannot be turned into any other capability.
   */
  private async checkGrantable(actor: PrincipalSnapshot, body: PermissionSet): Promise<void> {
    const granted = [...(body.systemCapabilities ?? []), ...(body.integrationCapabilities ?? [])];
    const beyond = [...new Set(granted.filter((c) => !actor.capabilities.includes(c)))].sort();
    if (beyond.length === 0) return;
    await this.events.transaction((tx) =>
      this.outbox.append(tx, {
        orgId: actor.orgId,
        action: 'identity.capability_grant_denied',
        outcome: 'denied',
        target: { type: 'permission_set', ...(body.name ? { id: body.name.slice(0, 128) } : {}) },
        details: { missing: [], beyond },
      }),
    );
    throw CustodianException.forbidden('Cannot grant capabilities you do not hold', { capabilities: beyond });
  }

  async find(m: EntityManager, orgId: string, id: string, lock = false): Promise<PermissionSetEntity> {
    const set = await m.findOne(PermissionSetEntity, {
      where: { id, orgId },
      ...(lock ? { lock: { mode: 'pessimistic_write' as const } } : {}),
    });
    if (!set) throw CustodianException.notFound('Permission set not found');
    return set;
  }
}
