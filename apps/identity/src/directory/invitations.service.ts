import { randomUUID } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import type { PrincipalSnapshot } from '@custodian/contracts';
import { CustodianException, OutboxWriter } from '@custodian/platform';
import type { EntityManager } from 'typeorm';
import { PrincipalSnapshotService } from '../auth/principal-snapshot.service';
import { InvitationEntity } from '../entities/invitation.entity';
import { MembershipEntity } from '../entities/membership.entity';
import { OrganizationEntity } from '../entities/organization.entity';
import { RoleEntity } from '../entities/role.entity';
import { UserEntity } from '../entities/user.entity';
import { IdentityEvents } from '../events/identity-events.service';
import { conflict, pageResult, type Page, type PageOf } from './directory.http';
import { MembersService } from './members.service';

/** How long an invitation stays open. */
export const INVITATION_TTL_MS = 14 * 24 * 3600 * 1000;

/**
 * An invitation as the inviting org sees it. Nothing in it depends on whether the address belongs
 * to an account (no user id, no name), so the answer never tells the inviter that.
 */
export interface InvitationView {
  id: string;
  status: 'invited';
  orgId: string;
  email: string;
  roleId: string | null;
  capabilities: string[];
  createdAt: string;
  expiresAt: string;
}

/** An invitation as the invited user sees it. */
export interface MyInvitationView {
  id: string;
  orgId: string;
  orgName: string;
  capabilities: string[];
  createdAt: string;
  expiresAt: string;
}

/** The membership an accepted invitation created. */
export interface JoinedView {
  orgId: string;
  orgName: string;
  roleId: string | null;
  capabilities: string[];
  joinedAt: string;
}

export interface InviteInput {
  email: string;
  roleId?: string | null;
  capabilities?: string[];
}

const view = (i: InvitationEntity): InvitationView => ({
  id: i.id,
  status: 'invited',
  orgId: i.orgId,
  email: i.email,
  roleId: i.roleId,
  capabilities: [...i.capabilities].sort(),
  createdAt: i.createdAt.toISOString(),
  expiresAt: i.expiresAt.toISOString(),
});

/**
 * Joining an org is the invited user's decision. An org's user managers invite by email — the same
 * answer whether or not the address has an account anywhere — and the user accepts or declines
 * with their own signed-in session. Acceptance grants what the invitation names, as far as the
 * inviter still holds it then (a membership obtained through someone carries no more than they have).
 */
@Injectable()
export class InvitationsService {
  constructor(
    @Inject(IdentityEvents) private readonly events: IdentityEvents,
    @Inject(OutboxWriter) private readonly outbox: OutboxWriter,
    @Inject(MembersService) private readonly members: MembersService,
    @Inject(PrincipalSnapshotService) private readonly snapshots: PrincipalSnapshotService,
  ) {}

  async invite(actor: PrincipalSnapshot, orgId: string, input: InviteInput): Promise<InvitationView> {
    this.members.sameOrg(actor, orgId);
    await this.members.checkCapabilityGrant(actor, input.capabilities);
    return this.events.transaction((m) => this.inviteIn(m, actor, orgId, input, 'members'));
  }

  /**
   * Records (or renews) the org's one pending invitation of the address, inside `m`. A repeated
   * invitation keeps its id and takes the new role, capabilities and inviter.
   */
  async inviteIn(
    m: EntityManager,
    actor: PrincipalSnapshot,
    orgId: string,
    input: InviteInput,
    via: 'members' | 'users',
  ): Promise<InvitationView> {
    const email = input.email.trim().toLowerCase();
    const roleId = input.roleId ?? null;
    if (roleId) await this.members.role(m, orgId, roleId);
    // Only this org's own members are looked up: whether the address exists elsewhere never shapes the answer.
    const member = await m.query(
      'SELECT 1 FROM membership m JOIN user_account u ON u.id = m.user_id WHERE m.org_id = $1 AND u.email = $2',
      [orgId, email],
    );
    if ((member as unknown[]).length > 0) throw conflict('The user is already a member');
    const rows: Array<{ id: string }> = await m.query(
      `INSERT INTO invitation (id, org_id, email, role_id, capabilities, invited_by, expires_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7)
       ON CONFLICT (org_id, email) DO UPDATE SET role_id = EXCLUDED.role_id, capabilities = EXCLUDED.capabilities,
         invited_by = EXCLUDED.invited_by, expires_at = EXCLUDED.expires_at
       RETURNING id`,
      [randomUUID(), orgId, email, roleId, input.capabilities ?? [], actor.userId, new Date(Date.now() + INVITATION_TTL_MS)],
    );
    const after = view(await m.findOneOrFail(InvitationEntity, { where: { id: rows[0].id } }));
    await this.outbox.append(m, {
      orgId,
      action: 'identity.invitation.created',
      outcome: 'success',
      target: { type: 'invitation', id: after.id },
      details: { after, via },
    });
    return after;
  }

  async listForOrg(actor: PrincipalSnapshot, orgId: string, page: Page): Promise<PageOf<InvitationView>> {
    this.members.sameOrg(actor, orgId);
    const rows = await this.events.read((m) =>
      m
        .createQueryBuilder(InvitationEntity, 'i')
        .where('i.org_id = :orgId AND i.expires_at > now()', { orgId })
        .orderBy('i.email')
        .addOrderBy('i.id')
        .limit(page.limit + 1)
        .offset(page.offset)
        .getMany(),
    );
    return pageResult(rows.map(view), page);
  }

  /** The org withdraws an invitation. */
  async revoke(actor: PrincipalSnapshot, orgId: string, id: string): Promise<void> {
    this.members.sameOrg(actor, orgId);
    await this.events.transaction(async (m) => {
      const invitation = await m.findOne(InvitationEntity, { where: { id, orgId }, lock: { mode: 'pessimistic_write' } });
      if (!invitation) throw CustodianException.notFound('Invitation not found');
      await m.delete(InvitationEntity, { id });
      await this.outbox.append(m, {
        orgId,
        action: 'identity.invitation.revoked',
        outcome: 'success',
        target: { type: 'invitation', id },
        details: { before: view(invitation) },
      });
    });
  }

  /** The open invitations addressed to the caller's email. */
  async listMine(actor: PrincipalSnapshot): Promise<{ items: MyInvitationView[]; nextCursor: null }> {
    this.assertPerson(actor);
    const rows: Array<{ id: string; org_id: string; name: string; capabilities: string[]; created_at: Date; expires_at: Date }> =
      await this.events.read((m) =>
        m.query(
          `SELECT i.id, i.org_id, o.name, i.capabilities, i.created_at, i.expires_at
             FROM invitation i JOIN user_account u ON u.email = i.email JOIN organization o ON o.id = i.org_id
            WHERE u.id = $1 AND i.expires_at > now() ORDER BY i.created_at, i.id LIMIT 200`,
          [actor.userId],
        ),
      );
    return {
      items: rows.map((r) => ({
        id: r.id,
        orgId: r.org_id,
        orgName: r.name,
        capabilities: [...r.capabilities].sort(),
        createdAt: r.created_at.toISOString(),
        expiresAt: r.expires_at.toISOString(),
      })),
      nextCursor: null,
    };
  }

  async accept(actor: PrincipalSnapshot, id: string): Promise<JoinedView> {
    this.assertPerson(actor);
    const pending = await this.events.read((m) => this.mine(m, actor, id));
    // The inviter's authority is read now, not when they invited: it may have shrunk since.
    const inviter = await this.snapshots.build({ userId: pending.invitedBy, orgId: pending.orgId }).catch(() => undefined);
    if (!inviter?.capabilities.includes('manage_users')) throw CustodianException.notFound('Invitation not found');
    const canGrant = inviter.capabilities.includes('manage_permissions');
    return this.events.transaction(async (m) => {
      const invitation = await this.mine(m, actor, id, true);
      if (await m.findOne(MembershipEntity, { where: { orgId: invitation.orgId, userId: actor.userId } }))
        throw conflict('You are already a member of this organization');
      const capabilities = canGrant ? invitation.capabilities.filter((c) => inviter.capabilities.includes(c)) : [];
      const withheld = invitation.capabilities.filter((c) => !capabilities.includes(c));
      const roleId =
        invitation.roleId && (await m.findOne(RoleEntity, { where: { id: invitation.roleId, orgId: invitation.orgId } }))
          ? invitation.roleId
          : null;
      await m.insert(MembershipEntity, { id: randomUUID(), orgId: invitation.orgId, userId: actor.userId, roleId, capabilities });
      await m.delete(InvitationEntity, { id });
      const after = await this.members.member(m, invitation.orgId, actor.userId);
      const version = await this.events.policyChanged(m, invitation.orgId, 'member.added', true);
      await this.events.directory(m, invitation.orgId, version, { kind: 'user_role', userId: actor.userId, roleId });
      await this.outbox.append(m, {
        orgId: invitation.orgId,
        action: 'identity.invitation.accepted',
        outcome: 'success',
        target: { type: 'invitation', id },
        details: { userId: actor.userId, invitedBy: invitation.invitedBy, withheld },
      });
      await this.outbox.append(m, {
        orgId: invitation.orgId,
        action: 'identity.member.added',
        outcome: 'success',
        target: { type: 'user', id: actor.userId },
        details: { after, invitationId: id, policyVersion: version },
      });
      const org = await m.findOneOrFail(OrganizationEntity, { where: { id: invitation.orgId } });
      return { orgId: org.id, orgName: org.name, roleId: after.roleId, capabilities: after.capabilities, joinedAt: after.joinedAt };
    });
  }

  async decline(actor: PrincipalSnapshot, id: string): Promise<void> {
    this.assertPerson(actor);
    await this.events.transaction(async (m) => {
      const invitation = await this.mine(m, actor, id, true);
      await m.delete(InvitationEntity, { id });
      await this.outbox.append(m, {
        orgId: invitation.orgId,
        action: 'identity.invitation.declined',
        outcome: 'success',
        target: { type: 'invitation', id },
        details: { userId: actor.userId },
      });
    });
  }

  /** The open invitation `id` addressed to the caller; anyone else's answers 404 like a missing one. */
  private async mine(m: EntityManager, actor: PrincipalSnapshot, id: string, lock = false): Promise<InvitationEntity> {
    const user = await m.findOne(UserEntity, { where: { id: actor.userId } });
    const invitation = user
      ? await m.findOne(InvitationEntity, {
          where: { id, email: user.email },
          ...(lock ? { lock: { mode: 'pessimistic_write' as const } } : {}),
        })
      : null;
    if (!invitation || invitation.expiresAt.getTime() <= Date.now()) throw CustodianException.notFound('Invitation not found');
    return invitation;
  }

  /**
   * Joining an org is the person's own decision: an agent acting for them, or an API key (a
   * credential made for scripts, possibly narrowed), may not take it.
   */
  private assertPerson(actor: PrincipalSnapshot): void {
    if (actor.agent || actor.apiKeyId || !actor.sessionId)
      throw CustodianException.forbidden('Only the person, signed in, may answer their invitations', { layer: 'agent_scope' });
  }
}
