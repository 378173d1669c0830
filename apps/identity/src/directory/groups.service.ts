import { randomUUID } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import type { PrincipalSnapshot } from '@custodian/contracts';
import { CustodianException, OutboxWriter } from '@custodian/platform';
import type { Static } from '@sinclair/typebox';
import type { EntityManager } from 'typeorm';
import { GroupMemberEntity } from '../entities/group-member.entity';
import { GroupEntity } from '../entities/group.entity';
import { MembershipEntity } from '../entities/membership.entity';
import { IdentityEvents } from '../events/identity-events.service';
import { conflict, conflictOnDuplicate, pageResult, type Page, type PageOf } from './directory.http';
import type { CreateGroupSchema, UpdateGroupSchema } from './directory.schemas';

export interface GroupView {
  id: string;
  name: string;
  description: string;
  createdAt: string;
  updatedAt: string;
}

const view = (g: GroupEntity): GroupView => ({
  id: g.id,
  name: g.name,
  description: g.description,
  createdAt: g.createdAt.toISOString(),
  updatedAt: g.updatedAt.toISOString(),
});

/** A user in a group: the link names both ends, like a permission-set assignment (ADR 0018). */
export interface GroupMemberView {
  groupId: string;
  userId: string;
  email: string;
  displayName: string;
  addedAt: string;
}

interface GroupMemberRow {
  user_id: string;
  email: string;
  display_name: string;
  created_at: Date;
}
const groupMemberView = (groupId: string, r: GroupMemberRow): GroupMemberView => ({
  groupId,
  userId: r.user_id,
  email: r.email,
  displayName: r.display_name,
  addedAt: r.created_at.toISOString(),
});

/** Groups of an org and their members (grantees of permission sets and sharing). */
@Injectable()
export class GroupsService {
  constructor(
    @Inject(IdentityEvents) private readonly events: IdentityEvents,
    @Inject(OutboxWriter) private readonly outbox: OutboxWriter,
  ) {}

  async list(orgId: string, page: Page): Promise<PageOf<GroupView>> {
    const rows = await this.events.read((m) =>
      m.find(GroupEntity, { where: { orgId }, order: { name: 'ASC', id: 'ASC' }, take: page.limit + 1, skip: page.offset }),
    );
    return pageResult(rows.map(view), page);
  }

  async get(orgId: string, id: string): Promise<GroupView> {
    return view(await this.events.read((m) => this.find(m, orgId, id)));
  }

  create(actor: PrincipalSnapshot, input: Static<typeof CreateGroupSchema>): Promise<GroupView> {
    return this.events.transaction((m) => this.createIn(m, actor, input));
  }

  /** Creates inside the caller's transaction (bundles apply many changes in one). */
  async createIn(m: EntityManager, actor: PrincipalSnapshot, input: Static<typeof CreateGroupSchema>): Promise<GroupView> {
    const group = m.create(GroupEntity, { id: randomUUID(), orgId: actor.orgId, name: input.name, description: input.description ?? '' });
    await conflictOnDuplicate(m.insert(GroupEntity, group), 'A group with this name exists');
    const saved = await this.find(m, actor.orgId, group.id);
    await this.outbox.append(m, {
      orgId: actor.orgId,
      action: 'identity.group.created',
      outcome: 'success',
      target: { type: 'group', id: group.id },
      details: { after: view(saved) },
    });
    return view(saved);
  }

  update(actor: PrincipalSnapshot, id: string, input: Static<typeof UpdateGroupSchema>): Promise<GroupView> {
    return this.events.transaction((m) => this.updateIn(m, actor, id, input));
  }

  async updateIn(m: EntityManager, actor: PrincipalSnapshot, id: string, input: Static<typeof UpdateGroupSchema>): Promise<GroupView> {
    const before = await this.find(m, actor.orgId, id, true);
    await conflictOnDuplicate(
      m.update(
        GroupEntity,
        { id },
        {
          ...(input.name !== undefined ? { name: input.name } : {}),
          ...(input.description !== undefined ? { description: input.description } : {}),
        },
      ),
      'A group with this name exists',
    );
    const after = await this.find(m, actor.orgId, id);
    await this.outbox.append(m, {
      orgId: actor.orgId,
      action: 'identity.group.updated',
      outcome: 'success',
      target: { type: 'group', id },
      details: { before: view(before), after: view(after) },
    });
    return view(after);
  }

  async remove(actor: PrincipalSnapshot, id: string): Promise<void> {
    await this.events.transaction(async (m) => {
      const before = await this.find(m, actor.orgId, id, true);
      const members: Array<{ user_id: string }> = await m.query('SELECT user_id FROM group_member WHERE group_id = $1', [id]);
      const assignments: Array<{ n: number }> = await m.query(
        'SELECT count(*)::int AS n FROM permission_set_assignment WHERE group_id = $1',
        [id],
      );
      await m.query('DELETE FROM permission_set_assignment WHERE group_id = $1 AND org_id = $2', [id, actor.orgId]);
      await m.delete(GroupMemberEntity, { groupId: id });
      await m.delete(GroupEntity, { id });
      const version = await this.events.policyChanged(m, actor.orgId, 'group.deleted', true);
      await this.events.directory(m, actor.orgId, version, { kind: 'group_deleted', groupId: id });
      await this.outbox.append(m, {
        orgId: actor.orgId,
        action: 'identity.group.deleted',
        outcome: 'success',
        target: { type: 'group', id },
        details: { before: { ...view(before), memberCount: members.length, assignmentCount: assignments[0].n }, policyVersion: version },
      });
    });
  }

  async members(orgId: string, id: string, page: Page): Promise<PageOf<GroupMemberView>> {
    return this.events.read(async (m) => {
      await this.find(m, orgId, id);
      const rows: GroupMemberRow[] = await m.query(
        `SELECT gm.user_id, u.email, u.display_name, gm.created_at FROM group_member gm JOIN user_account u ON u.id = gm.user_id
          WHERE gm.group_id = $1 AND gm.org_id = $2 ORDER BY u.email, gm.user_id LIMIT $3 OFFSET $4`,
        [id, orgId, page.limit + 1, page.offset],
      );
      return pageResult(
        rows.map((r) => groupMemberView(id, r)),
        page,
      );
    });
  }

  /** 201 with the new member, like an assignment (ADR 0018); 409 when the user is already in the group. */
  async addMember(actor: PrincipalSnapshot, id: string, userId: string): Promise<GroupMemberView> {
    return this.events.transaction(async (m) => {
      await this.find(m, actor.orgId, id, true);
      const member = await m.findOne(MembershipEntity, { where: { orgId: actor.orgId, userId } });
      if (!member) throw CustodianException.notFound('User not found');
      const exists = await m.findOne(GroupMemberEntity, { where: { groupId: id, userId } });
      if (exists) throw conflict('The user is already a member of this group');
      await m.insert(GroupMemberEntity, { groupId: id, userId, orgId: actor.orgId });
      const version = await this.events.policyChanged(m, actor.orgId, 'group.member_added', true);
      await this.events.directory(m, actor.orgId, version, { kind: 'group_member_added', groupId: id, userId });
      await this.outbox.append(m, {
        orgId: actor.orgId,
        action: 'identity.group.member_added',
        outcome: 'success',
        target: { type: 'group', id },
        details: { after: { userId }, policyVersion: version },
      });
      const rows: GroupMemberRow[] = await m.query(
        `SELECT gm.user_id, u.email, u.display_name, gm.created_at FROM group_member gm JOIN user_account u ON u.id = gm.user_id
          WHERE gm.group_id = $1 AND gm.user_id = $2`,
        [id, userId],
      );
      return groupMemberView(id, rows[0]);
    });
  }

  async removeMember(actor: PrincipalSnapshot, id: string, userId: string): Promise<void> {
    await this.events.transaction(async (m) => {
      await this.find(m, actor.orgId, id, true);
      const result = await m.delete(GroupMemberEntity, { groupId: id, userId, orgId: actor.orgId });
      if (!result.affected) throw CustodianException.notFound('Group member not found');
      const version = await this.events.policyChanged(m, actor.orgId, 'group.member_removed', true);
      await this.events.directory(m, actor.orgId, version, { kind: 'group_member_removed', groupId: id, userId });
      await this.outbox.append(m, {
        orgId: actor.orgId,
        action: 'identity.group.member_removed',
        outcome: 'success',
        target: { type: 'group', id },
        details: { before: { userId }, policyVersion: version },
      });
    });
  }

  async find(m: EntityManager, orgId: string, id: string, lock = false): Promise<GroupEntity> {
    const group = await m.findOne(GroupEntity, { where: { id, orgId }, ...(lock ? { lock: { mode: 'pessimistic_write' as const } } : {}) });
    if (!group) throw CustodianException.notFound('Group not found');
    return group;
  }
}
