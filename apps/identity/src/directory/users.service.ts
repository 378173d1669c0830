import { randomUUID } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import { ErrorCode, type PrincipalSnapshot } from '@custodian/contracts';
import { CustodianException, OutboxWriter } from '@custodian/platform';
import type { Static } from '@sinclair/typebox';
import type { EntityManager } from 'typeorm';
import { PASSWORD_HASHER } from '../auth/password-hasher';
import type { PasswordHasher } from '../auth/password-hasher';
import { heldCapabilities } from '../auth/principal-snapshot.service';
import { SessionService } from '../auth/session.service';
import { InvitationEntity } from '../entities/invitation.entity';
import { MembershipEntity } from '../entities/membership.entity';
import { UserEntity } from '../entities/user.entity';
import { IdentityEvents } from '../events/identity-events.service';
import { conflict, conflictOnDuplicate, type Page, type PageOf } from './directory.http';
import type { CreateUserSchema, UpdateUserSchema } from './directory.schemas';
import { InvitationsService, type InvitationView } from './invitations.service';
import { MembersService, type MemberView } from './members.service';

function notHomeOrg(): CustodianException {
  return CustodianException.forbidden("Only the user's home organization may change their name, password or active flag", {
    reason: 'not_home_organization',
  });
}

/** What creating a user did: a new account (201), or an invitation when the address is taken (202). */
export type CreateUserResult = { status: 201; body: MemberView } | { status: 202; body: InvitationView };

/** Profile fields: they belong to the account, which its home org alone manages. */
const PROFILE_FIELDS = ['displayName', 'active', 'password'] as const;

/**
 * Users as seen from the org a request acts in: the members of that org. Accounts are
 * installation-wide (email unique) and belong to their home org, the org that created them: only
 * its user managers change the profile (name, password, the installation-wide active flag). Any org
 * the user joined changes only its own membership (role, capabilities, removal).
 */
@Injectable()
export class UsersService {
  constructor(
    @Inject(IdentityEvents) private readonly events: IdentityEvents,
    @Inject(OutboxWriter) private readonly outbox: OutboxWriter,
    @Inject(SessionService) private readonly sessions: SessionService,
    @Inject(PASSWORD_HASHER) private readonly hasher: PasswordHasher,
    @Inject(MembersService) private readonly members: MembersService,
    @Inject(InvitationsService) private readonly invitations: InvitationsService,
  ) {}

  list(actor: PrincipalSnapshot, page: Page): Promise<PageOf<MemberView>> {
    return this.members.list(actor, actor.orgId, page);
  }

  get(actor: PrincipalSnapshot, id: string): Promise<MemberView> {
    return this.members.get(actor, actor.orgId, id);
  }

  /**
   * A new account whose home is this org. An address that already has an account elsewhere gets
   * an invitation instead, answered exactly like an invitation to an unknown address — the caller
   * learns nothing about other orgs' users, and the account is not touched.
   */
  async create(
    actor: PrincipalSnapshot,
    input: Static<typeof CreateUserSchema>,
    within?: (m: EntityManager, userId: string) => Promise<void>,
  ): Promise<CreateUserResult> {
    const passwordHash = await this.hasher.hash(input.password);
    return this.events.transaction(async (m): Promise<CreateUserResult> => {
      const email = input.email.trim().toLowerCase();
      const roleId = input.roleId ?? null;
      if (roleId) await this.members.role(m, actor.orgId, roleId);
      if (await m.findOne(UserEntity, { where: { email } })) {
        return { status: 202, body: await this.invitations.inviteIn(m, actor, actor.orgId, { email, roleId }, 'users') };
      }
      const user = m.create(UserEntity, {
        id: randomUUID(),
        email,
        displayName: input.displayName,
        passwordHash,
        active: true,
        homeOrgId: actor.orgId,
      });
      await conflictOnDuplicate(m.insert(UserEntity, user), 'A user with this email exists');
      await m.insert(MembershipEntity, { id: randomUUID(), orgId: actor.orgId, userId: user.id, roleId, capabilities: [] });
      // The org's own pending invitation of this address is answered by the account it just made.
      await m.delete(InvitationEntity, { orgId: actor.orgId, email });
      // A caller's own rows for the new account (SCIM's attributes) commit with it or not at all.
      if (within) await within(m, user.id);
      const after = await this.members.member(m, actor.orgId, user.id);
      const version = await this.events.policyChanged(m, actor.orgId, 'user.created', true);
      await this.events.directory(m, actor.orgId, version, { kind: 'user_role', userId: user.id, roleId });
      await this.outbox.append(m, {
        orgId: actor.orgId,
        action: 'identity.user.created',
        outcome: 'success',
        target: { type: 'user', id: user.id },
        details: { after, policyVersion: version },
      });
      return { status: 201, body: after };
    });
  }

  async update(
    actor: PrincipalSnapshot,
    id: string,
    input: Static<typeof UpdateUserSchema>,
    within?: (m: EntityManager, user: UserEntity) => Promise<void>,
  ): Promise<MemberView> {
    const profile = PROFILE_FIELDS.filter((f) => input[f] !== undefined);
    if (profile.length > 0) await this.assertHomeOrg(actor, id, profile);
    if (input.password !== undefined) await this.assertHoldsNoMore(actor, id);
    const passwordHash = input.password === undefined ? undefined : await this.hasher.hash(input.password);
    return this.events.transaction(async (m) => {
      const user = await m.findOne(UserEntity, { where: { id }, lock: { mode: 'pessimistic_write' } });
      const before = user ? await this.members.member(m, actor.orgId, id) : undefined;
      if (!user || !before) throw CustodianException.notFound('User not found');
      // Re-checked under the row lock: the answer above was read before it.
      if (profile.length > 0 && user.homeOrgId !== actor.orgId) throw notHomeOrg();
      if (id === actor.userId && input.active === false) throw conflict('You cannot deactivate yourself');
      const accountFields = {
        ...(input.displayName !== undefined ? { displayName: input.displayName } : {}),
        ...(input.active !== undefined ? { active: input.active } : {}),
        ...(passwordHash !== undefined ? { passwordHash } : {}),
      };
      if (Object.keys(accountFields).length > 0) await m.update(UserEntity, { id }, accountFields);
      // A caller's own changes to the same account (SCIM's attributes, its email) share this transaction and audit row.
      if (within) await within(m, user);
      const killSessions = (input.active === false && user.active) || passwordHash !== undefined;
      let revokedSessions = 0;
      if (killSessions) {
        // Every session ends, in every org the user belongs to: the account is one.
        revokedSessions = (
          await this.sessions.revokeAllForUser(m, id, input.active === false ? 'user_deactivated' : 'password_changed', actor.orgId)
        ).length;
        if (input.active === false)
          await this.events.revoked(m, { orgId: actor.orgId, kind: 'user', ids: [id], reason: 'user_deactivated' });
      }
      if (input.roleId !== undefined) {
        await this.members.update(actor, actor.orgId, id, { roleId: input.roleId }, m);
      } else if (input.active !== undefined && input.active !== user.active) {
        await this.events.policyChanged(m, actor.orgId, input.active ? 'user.activated' : 'user.deactivated', false);
      }
      const after = await this.members.member(m, actor.orgId, id);
      await this.outbox.append(m, {
        orgId: actor.orgId,
        action: 'identity.user.updated',
        outcome: 'success',
        target: { type: 'user', id },
        details: { before, after, ...(passwordHash !== undefined ? { passwordChanged: true } : {}), revokedSessions },
      });
      return after;
    });
  }

  remove(actor: PrincipalSnapshot, id: string): Promise<void> {
    return this.members.remove(actor, actor.orgId, id);
  }

  /** The caller changes their own password: every session of theirs ends (I7). */
  async changeOwnPassword(actor: PrincipalSnapshot, currentPassword: string, newPassword: string): Promise<void> {
    const user = await this.events.read((m) => m.findOne(UserEntity, { where: { id: actor.userId } }));
    const ok = await this.hasher.verify(user?.passwordHash, currentPassword);
    if (!user || !ok) {
      await this.events.transaction((m) =>
        this.outbox.append(m, {
          orgId: actor.orgId,
          action: 'auth.password_change_failed',
          outcome: 'failure',
          target: { type: 'user', id: actor.userId },
        }),
      );
      throw new CustodianException(ErrorCode.InvalidCredentials, 'Invalid email or password');
    }
    const passwordHash = await this.hasher.hash(newPassword);
    await this.events.transaction(async (m) => {
      await m.update(UserEntity, { id: actor.userId }, { passwordHash });
      const ids = await this.sessions.revokeAllForUser(m, actor.userId, 'password_changed', actor.orgId);
      await this.outbox.append(m, {
        orgId: actor.orgId,
        action: 'auth.password_changed',
        outcome: 'success',
        target: { type: 'user', id: actor.userId },
        details: { revokedSessions: ids.length },
      });
    });
  }

  /**
   * Whoever sets a password can sign in as that user, so the user must hold nothing the setter's
   * credential does not (in any of their orgs): a user manager cannot take over an administrator,
   * and a key cannot turn itself into a full session by setting its own user's password.
   */
  private async assertHoldsNoMore(actor: PrincipalSnapshot, id: string): Promise<void> {
    const held = await this.events.read((m) => heldCapabilities(m, id));
    const beyond = held.filter((c) => !actor.capabilities.includes(c));
    if (beyond.length === 0) return;
    await this.events.transaction((m) =>
      this.outbox.append(m, {
        orgId: actor.orgId,
        action: 'identity.user.password_reset_denied',
        outcome: 'denied',
        target: { type: 'user', id },
        details: { reason: 'target_holds_more', capabilities: beyond },
      }),
    );
    throw CustodianException.forbidden('You cannot set the password of a user who holds capabilities you do not', {
      reason: 'target_holds_more',
      capabilities: beyond,
    });
  }

  /**
   * A profile change from an org that is not the user's home is refused (403) and audited as an
   * attempt to reach across the wall; a user who is not a member of this org stays a 404.
   */
  private async assertHomeOrg(actor: PrincipalSnapshot, id: string, fields: readonly string[]): Promise<void> {
    const rows: Array<{ home_org_id: string | null }> = await this.events.read((m) =>
      m.query('SELECT u.home_org_id FROM user_account u JOIN membership m ON m.user_id = u.id AND m.org_id = $2 WHERE u.id = $1', [
        id,
        actor.orgId,
      ]),
    );
    if (rows.length === 0) throw CustodianException.notFound('User not found');
    if (rows[0].home_org_id === actor.orgId) return;
    await this.events.transaction((m) =>
      this.outbox.append(m, {
        orgId: actor.orgId,
        action: 'authz.denied',
        outcome: 'denied',
        target: { type: 'user', id },
        details: { layer: 'tenant', reason: 'not_home_organization', fields: [...fields] },
      }),
    );
    throw notHomeOrg();
  }
}
