import { randomUUID } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import type { PrincipalSnapshot } from '@custodian/contracts';
import { CAPABILITIES, CustodianException, OutboxWriter } from '@custodian/platform';
import type { Static } from '@sinclair/typebox';
import type { EntityManager } from 'typeorm';
import { SessionService } from '../auth/session.service';
import { MembershipEntity } from '../entities/membership.entity';
import { OrganizationEntity } from '../entities/organization.entity';
import { RoleEntity } from '../entities/role.entity';
import { IdentityEvents } from '../events/identity-events.service';
import { conflict, pageResult, type Page, type PageOf } from './directory.http';
import type { UpdateMemberSchema } from './directory.schemas';

export interface MemberView {
  /** The user's id (ADR 0018: every resource is keyed `id`). */
  id: string;
  email: string;
  displayName: string;
  active: boolean;
  roleId: string | null;
  capabilities: string[];
  joinedAt: string;
}

export interface OrgView {
  id: string;
  name: string;
  policyVersion: number;
  createdAt: string;
}

const orgView = (o: OrganizationEntity): OrgView => ({
  id: o.id,
  name: o.name,
  policyVersion: o.policyVersion,
  createdAt: o.createdAt.toISOString(),
});

interface MemberRow {
  user_id: string;
  email: string;
  display_name: string;
  active: boolean;
  role_id: string | null;
  capabilities: string[];
  created_at: Date;
}
const memberView = (r: MemberRow): MemberView => ({
  id: r.user_id,
  email: r.email,
  displayName: r.display_name,
  active: r.active,
  roleId: r.role_id,
  capabilities: [...r.capabilities].sort(),
  joinedAt: r.created_at.toISOString(),
});
const MEMBER_SELECT = `SELECT m.user_id, u.email, u.display_name, u.active, m.role_id, m.capabilities, m.created_at
  FROM membership m JOIN user_account u ON u.id = m.user_id`;

/**
 * Organizations and memberships. A user may belong to several orgs; a request acts in exactly
 * one, and only that org is visible: any other org id answers 404 (R1). Users join another org
 * only by accepting an invitation (invitations.service.ts).
 */
@Injectable()
export class MembersService {
  constructor(
    @Inject(IdentityEvents) private readonly events: IdentityEvents,
    @Inject(OutboxWriter) private readonly outbox: OutboxWriter,
    @Inject(SessionService) private readonly sessions: SessionService,
  ) {}

  /** The orgs the caller belongs to (to pick one at login). */
  async myOrgs(actor: PrincipalSnapshot): Promise<OrgView[]> {
    const rows = await this.events.read((m) =>
      m
        .createQueryBuilder(OrganizationEntity, 'o')
        .innerJoin(MembershipEntity, 'm', 'm.org_id = o.id AND m.user_id = :userId', { userId: actor.userId })
        .orderBy('o.name')
        .addOrderBy('o.id')
        .limit(200)
        .getMany(),
    );
    return rows.map(orgView);
  }

  async getOrg(actor: PrincipalSnapshot, id: string): Promise<OrgView> {
    this.sameOrg(actor, id);
    const org = await this.events.read((m) => m.findOne(OrganizationEntity, { where: { id } }));
    if (!org) throw CustodianException.notFound('Organization not found');
    return orgView(org);
  }

  /** A new org; its creator becomes its first member with every capability (an empty org needs an admin). */
  async createOrg(actor: PrincipalSnapshot, name: string): Promise<OrgView> {
    return this.events.transaction(async (m) => {
      const org = m.create(OrganizationEntity, { id: randomUUID(), name, policyVersion: 1, directorySeq: 0 });
      await m.insert(OrganizationEntity, org);
      await m.insert(MembershipEntity, {
        id: randomUUID(),
        orgId: org.id,
        userId: actor.userId,
        capabilities: [...CAPABILITIES],
        roleId: null,
      });
      const saved = await m.findOneOrFail(OrganizationEntity, { where: { id: org.id } });
      await this.outbox.append(m, {
        orgId: org.id,
        action: 'identity.org.created',
        outcome: 'success',
        target: { type: 'organization', id: org.id },
        details: { after: orgView(saved), createdFromOrgId: actor.orgId },
      });
      return orgView(saved);
    });
  }

  async renameOrg(actor: PrincipalSnapshot, id: string, name: string): Promise<OrgView> {
    this.sameOrg(actor, id);
    return this.events.transaction(async (m) => {
      const before = await m.findOne(OrganizationEntity, { where: { id }, lock: { mode: 'pessimistic_write' } });
      if (!before) throw CustodianException.notFound('Organization not found');
      await m.update(OrganizationEntity, { id }, { name });
      const after = await m.findOneOrFail(OrganizationEntity, { where: { id } });
      await this.outbox.append(m, {
        orgId: id,
        action: 'identity.org.updated',
        outcome: 'success',
        target: { type: 'organization', id },
        details: { before: orgView(before), after: orgView(after) },
      });
      return orgView(after);
    });
  }

  async list(actor: PrincipalSnapshot, orgId: string, page: Page): Promise<PageOf<MemberView>> {
    this.sameOrg(actor, orgId);
    const rows: MemberRow[] = await this.events.read((m) =>
      m.query(`${MEMBER_SELECT} WHERE m.org_id = $1 ORDER BY u.email, m.user_id LIMIT $2 OFFSET $3`, [orgId, page.limit + 1, page.offset]),
    );
    return pageResult(rows.map(memberView), page);
  }

  async get(actor: PrincipalSnapshot, orgId: string, userId: string): Promise<MemberView> {
    this.sameOrg(actor, orgId);
    return this.events.read((m) => this.member(m, orgId, userId));
  }

  /** Role and direct capabilities of a member; `m` may be the caller's transaction. */
  async update(
    actor: PrincipalSnapshot,
    orgId: string,
    userId: string,
    input: Static<typeof UpdateMemberSchema>,
    m?: EntityManager,
  ): Promise<MemberView> {
    this.sameOrg(actor, orgId);
    await this.checkCapabilityGrant(actor, input.capabilities);
    const work = async (tx: EntityManager): Promise<MemberView> => {
      const membership = await tx.findOne(MembershipEntity, { where: { orgId, userId }, lock: { mode: 'pessimistic_write' } });
      if (!membership) throw CustodianException.notFound('User not found');
      const before = await this.member(tx, orgId, userId);
      const roleChanges = input.roleId !== undefined && input.roleId !== membership.roleId;
      if (roleChanges && input.roleId) await this.role(tx, orgId, input.roleId);
      const changes = {
        ...(roleChanges ? { roleId: input.roleId ?? null } : {}),
        ...(input.capabilities ? { capabilities: input.capabilities } : {}),
      };
      if (Object.keys(changes).length === 0) return before;
      await tx.update(MembershipEntity, { id: membership.id }, changes);
      const after = await this.member(tx, orgId, userId);
      const version = await this.events.policyChanged(tx, orgId, 'member.updated', roleChanges);
      if (roleChanges) await this.events.directory(tx, orgId, version, { kind: 'user_role', userId, roleId: after.roleId });
      await this.outbox.append(tx, {
        orgId,
        action: 'identity.member.updated',
        outcome: 'success',
        target: { type: 'user', id: userId },
        details: { before, after, policyVersion: version },
      });
      return after;
    };
    return m ? work(m) : this.events.transaction(work);
  }

  /** Removes a user from the org: group memberships, direct assignments, sessions and API keys there go too. */
  async remove(actor: PrincipalSnapshot, orgId: string, userId: string): Promise<void> {
    this.sameOrg(actor, orgId);
    await this.events.transaction(async (m) => {
      const before = await this.member(m, orgId, userId);
      const [{ admins }] = (await m.query(
        `SELECT count(*)::int AS admins FROM membership m JOIN user_account u ON u.id = m.user_id
          WHERE m.org_id = $1 AND m.user_id <> $2 AND u.active AND 'manage_users' = ANY(m.capabilities)`,
        [orgId, userId],
      )) as Array<{ admins: number }>;
      if (admins === 0 && before.capabilities.includes('manage_users'))
        throw conflict('The last member who can manage users cannot be removed');
      const groups: Array<{ group_id: string }> = await m.query(
        'WITH d AS (DELETE FROM group_member WHERE org_id = $1 AND user_id = $2 RETURNING group_id) SELECT group_id FROM d ORDER BY group_id',
        [orgId, userId],
      );
      await m.query('DELETE FROM permission_set_assignment WHERE org_id = $1 AND user_id = $2', [orgId, userId]);
      await m.query('DELETE FROM membership WHERE org_id = $1 AND user_id = $2', [orgId, userId]);
      const keys: Array<{ id: string }> = await m.query(
        `WITH u AS (UPDATE api_key SET revoked_at = now() WHERE org_id = $1 AND user_id = $2 AND revoked_at IS NULL RETURNING id) SELECT id FROM u`,
        [orgId, userId],
      );
      await this.sessions.revokeForMembership(m, userId, orgId, 'member_removed');
      await this.events.revoked(m, { orgId, kind: 'api_key', ids: keys.map((k) => k.id), reason: 'member_removed' });
      const version = await this.events.policyChanged(m, orgId, 'member.removed', true);
      for (const g of groups) await this.events.directory(m, orgId, version, { kind: 'group_member_removed', groupId: g.group_id, userId });
      await this.events.directory(m, orgId, version, { kind: 'member_removed', userId });
      await this.outbox.append(m, {
        orgId,
        action: 'identity.member.removed',
        outcome: 'success',
        target: { type: 'user', id: userId },
        details: { before, policyVersion: version },
      });
    });
  }

  async member(m: EntityManager, orgId: string, userId: string): Promise<MemberView> {
    const rows: MemberRow[] = await m.query(`${MEMBER_SELECT} WHERE m.org_id = $1 AND m.user_id = $2`, [orgId, userId]);
    if (rows.length === 0) throw CustodianException.notFound('User not found');
    return memberView(rows[0]);
  }

  async role(m: EntityManager, orgId: string, roleId: string): Promise<void> {
    if (!(await m.findOne(RoleEntity, { where: { id: roleId, orgId } }))) throw CustodianException.notFound('Role not found');
  }

  /** Whether `id` is a member, group or role of the org (for other services; see FindDirectoryEntry). */
  async entryExists(orgId: string, type: 'user' | 'group' | 'role', id: string): Promise<boolean> {
    const sql = {
      user: 'SELECT 1 FROM membership WHERE org_id = $1 AND user_id = $2',
      group: 'SELECT 1 FROM user_group WHERE org_id = $1 AND id = $2',
      role: 'SELECT 1 FROM role WHERE org_id = $1 AND id = $2',
    }[type];
    const rows: unknown[] = await this.events.read((m) => m.query(sql, [orgId, id]));
    return rows.length > 0;
  }

  /** Only the org the request acts in exists for it. */
  sameOrg(actor: PrincipalSnapshot, orgId: string): void {
    if (orgId !== actor.orgId) throw CustodianException.notFound('Organization not found');
  }

  /** Direct capabilities are permissions: granting them needs manage_permissions, and never more than one holds. */
  async checkCapabilityGrant(actor: PrincipalSnapshot, capabilities: readonly string[] | undefined): Promise<void> {
    if (!capabilities) return;
    const missing = actor.capabilities.includes('manage_permissions') ? [] : ['manage_permissions'];
    const beyond = capabilities.filter((c) => !actor.capabilities.includes(c));
    if (missing.length === 0 && beyond.length === 0) return;
    // A refused grant is an escalation attempt: it is audited like any other denial (A6).
    await this.events.transaction((m) =>
      this.outbox.append(m, {
        orgId: actor.orgId,
        action: 'identity.capability_grant_denied',
        outcome: 'denied',
        target: { type: 'organization', id: actor.orgId },
        details: { missing, beyond },
      }),
    );
    if (missing.length > 0) throw CustodianException.forbidden('Missing capability', { missing });
    throw CustodianException.forbidden('Cannot grant capabilities you do not hold', { capabilities: beyond });
  }
}
