import { randomUUID } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import { ErrorCode, type PrincipalSnapshot } from '@custodian/contracts';
import { CustodianException, OutboxWriter } from '@custodian/platform';
import type { Static } from '@sinclair/typebox';
import type { EntityManager } from 'typeorm';
import { PASSWORD_HASHER } from '../auth/password-hasher';
import type { PasswordHasher } from '../auth/password-hasher';
import { SessionService } from '../auth/session.service';
import { MembershipEntity } from '../entities/membership.entity';
import { UserEntity } from '../entities/user.entity';
import { IdentityEvents } from '../events/identity-events.service';
import { conflict, conflictOnDuplicate, type Page, type PageOf } from './directory.http';
import type { CreateUserSchema, UpdateUserSchema } from './directory.schemas';
import { MembersService, type MemberView } from './members.service';

/**
 * Users as seen from the org a request acts in: the members of that org. Accounts are
 * installation-wide (email unique); a change to the account itself (active, password) is refused
 * while the user also belongs to another org, so one org's admin never reaches into another (R1).
 */
@Injectable()
export class UsersService {
  constructor(
    @Inject(IdentityEvents) private readonly events: IdentityEvents,
    @Inject(OutboxWriter) private readonly outbox: OutboxWriter,
    @Inject(SessionService) private readonly sessions: SessionService,
    @Inject(PASSWORD_HASHER) private readonly hasher: PasswordHasher,
    @Inject(MembersService) private readonly members: MembersService,
  ) {}

  list(actor: PrincipalSnapshot, page: Page): Promise<PageOf<MemberView>> {
    return this.members.list(actor, actor.orgId, page);
  }

  get(actor: PrincipalSnapshot, id: string): Promise<MemberView> {
    return this.members.get(actor, actor.orgId, id);
  }

  async create(actor: PrincipalSnapshot, input: Static<typeof CreateUserSchema>): Promise<MemberView> {
    const passwordHash = await this.hasher.hash(input.password);
    return this.events.transaction(async (m) => {
      const roleId = input.roleId ?? null;
      if (roleId) await this.members.role(m, actor.orgId, roleId);
      const user = m.create(UserEntity, {
        id: randomUUID(),
        email: input.email.trim().toLowerCase(),
        displayName: input.displayName,
        passwordHash,
        active: true,
      });
      await conflictOnDuplicate(m.insert(UserEntity, user), 'A user with this email exists');
      await m.insert(MembershipEntity, { id: randomUUID(), orgId: actor.orgId, userId: user.id, roleId, capabilities: [] });
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
      return after;
    });
  }

  async update(actor: PrincipalSnapshot, id: string, input: Static<typeof UpdateUserSchema>): Promise<MemberView> {
    const passwordHash = input.password === undefined ? undefined : await this.hasher.hash(input.password);
    return this.events.transaction(async (m) => {
      const user = await m.findOne(UserEntity, { where: { id }, lock: { mode: 'pessimistic_write' } });
      const before = user ? await this.members.member(m, actor.orgId, id) : undefined;
      if (!user || !before) throw CustodianException.notFound('User not found');
      const accountChange = input.active !== undefined || passwordHash !== undefined;
      if (accountChange) await this.assertOnlyThisOrg(m, id, actor.orgId);
      if (accountChange && id === actor.userId && input.active === false) throw conflict('You cannot deactivate yourself');
      const accountFields = {
        ...(input.displayName !== undefined ? { displayName: input.displayName } : {}),
        ...(input.active !== undefined ? { active: input.active } : {}),
        ...(passwordHash !== undefined ? { passwordHash } : {}),
      };
      if (Object.keys(accountFields).length > 0) await m.update(UserEntity, { id }, accountFields);
      const killSessions = (input.active === false && user.active) || passwordHash !== undefined;
      let revokedSessions = 0;
      if (killSessions) {
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

  private async assertOnlyThisOrg(m: EntityManager, userId: string, orgId: string): Promise<void> {
    const others = await m.query('SELECT 1 FROM membership WHERE user_id = $1 AND org_id <> $2 LIMIT 1', [userId, orgId]);
    if ((others as unknown[]).length > 0) {
      throw conflict('The user also belongs to another organization; remove them from this one instead');
    }
  }
}
