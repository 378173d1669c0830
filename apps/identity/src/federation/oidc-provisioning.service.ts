import { randomBytes, randomUUID } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import { ErrorCode } from '@custodian/contracts';
import { CustodianException, OutboxWriter } from '@custodian/platform';
import type { EntityManager } from 'typeorm';
import { PASSWORD_HASHER, type PasswordHasher } from '../auth/password-hasher';
import { heldCapabilities } from '../auth/principal-snapshot.service';
import { MembershipEntity } from '../entities/membership.entity';
import { UserEntity } from '../entities/user.entity';
import { IdentityEvents } from '../events/identity-events.service';
import { OidcIdentityEntity, type ClaimMapping, type OidcConnectionEntity } from './oidc.entities';

export type IdTokenClaims = Record<string, unknown> & { sub: string };

/** How the sign-in found its account. */
export type Resolution = { userId: string; how: 'linked' | 'email_link' | 'jit' };

function refuse(code: ErrorCode, message: string, reason?: string): CustodianException {
  return new CustodianException(code, message, reason ? { reason } : undefined);
}

/** The claim's email when the IdP says it verified it (`true`, or "true" as some IdPs send it). */
function verifiedEmail(conn: OidcConnectionEntity, claims: IdTokenClaims): { email?: string; verified: boolean } {
  const raw = claims.email;
  const email = typeof raw === 'string' && /^[^\s@]{1,64}@[^\s@]{1,255}$/.test(raw.trim()) ? raw.trim().toLowerCase() : undefined;
  const flag = claims[conn.emailVerifiedClaim];
  return { email, verified: flag === true || flag === 'true' };
}

/** A claim matches a mapping when it equals the value, or is an array that contains it. */
function matches(claim: unknown, value: string): boolean {
  return Array.isArray(claim) ? claim.some((c) => c === value) : claim === value;
}

/**
 * Just-in-time provisioning: from a validated ID token to the account it signs in, inside the
 * sign-in's transaction. An identity already linked signs in its account; otherwise the verified
 * email either links an existing member (only when the org allows it, and never one who holds more
 * than the connection's writer) or creates an account (when JIT is on). Then the claim mappings are
 * applied. Every change is audited and bumps the policy version as the directory API does.
 */
@Injectable()
export class OidcProvisioningService {
  constructor(
    @Inject(IdentityEvents) private readonly events: IdentityEvents,
    @Inject(OutboxWriter) private readonly outbox: OutboxWriter,
    @Inject(PASSWORD_HASHER) private readonly hasher: PasswordHasher,
  ) {}

  async resolve(m: EntityManager, conn: OidcConnectionEntity, claims: IdTokenClaims): Promise<Resolution> {
    const orgId = conn.orgId;
    const { email, verified } = verifiedEmail(conn, claims);
    // The org's domain allow-list holds for every sign-in, linked or not: the IdP may host other tenants' users.
    if (conn.allowedEmailDomains.length > 0) {
      const domain = email?.slice(email.lastIndexOf('@') + 1);
      if (!domain || !conn.allowedEmailDomains.includes(domain))
        throw refuse(ErrorCode.OidcEmailDomainNotAllowed, "The email's domain is not allowed for this organization");
    }
    const link = await m.findOne(OidcIdentityEntity, {
      where: { orgId, issuer: conn.issuer, subject: claims.sub },
      lock: { mode: 'pessimistic_write' },
    });
    if (link) {
      await this.assertCanSignIn(m, orgId, link.userId);
      await m.update(OidcIdentityEntity, { orgId, issuer: conn.issuer, subject: claims.sub }, { lastSignInAt: new Date() });
      await this.applyMappings(m, conn, link.userId, claims);
      return { userId: link.userId, how: 'linked' };
    }
    if (!email || !verified)
      throw refuse(ErrorCode.OidcEmailNotVerified, 'The identity provider did not verify an email address for this identity');
    const existing = await m.findOne(UserEntity, { where: { email } });
    if (existing) {
      const member = await m.findOne(MembershipEntity, { where: { orgId, userId: existing.id } });
      // Nobody joins an org unasked: an account of another org is never pulled in by its email.
      if (!member)
        throw refuse(ErrorCode.OidcLinkNotAllowed, 'An account with this email exists outside this organization', 'not_a_member');
      if (!conn.linkExistingUsers)
        throw refuse(ErrorCode.OidcLinkNotAllowed, 'This organization does not link sign-ins to existing accounts', 'linking_off');
      await this.assertCanSignIn(m, orgId, existing.id);
      const beyond = (await heldCapabilities(m, existing.id)).filter((c) => !conn.writerCapabilities.includes(c));
      if (beyond.length > 0)
        throw refuse(
          ErrorCode.OidcLinkNotAllowed,
          'The account holds more than whoever configured the identity provider',
          'target_holds_more',
        );
      await this.link(m, conn, claims.sub, existing.id, 'email');
      await this.applyMappings(m, conn, existing.id, claims);
      return { userId: existing.id, how: 'email_link' };
    }
    if (!conn.jitProvisioning) throw refuse(ErrorCode.OidcUserNotProvisioned, 'No account exists for this identity');
    const userId = await this.createUser(m, conn, email, claims);
    await this.link(m, conn, claims.sub, userId, 'jit');
    await this.applyMappings(m, conn, userId, claims);
    return { userId, how: 'jit' };
  }

  private async assertCanSignIn(m: EntityManager, orgId: string, userId: string): Promise<void> {
    const [user, member] = await Promise.all([
      m.findOne(UserEntity, { where: { id: userId } }),
      m.findOne(MembershipEntity, { where: { orgId, userId } }),
    ]);
    if (!member) throw refuse(ErrorCode.OidcUserNotProvisioned, 'The linked account is no longer a member of this organization');
    if (!user?.active) throw CustodianException.forbidden('The account is deactivated', { reason: 'user_inactive' });
  }

  private async link(m: EntityManager, conn: OidcConnectionEntity, subject: string, userId: string, by: 'jit' | 'email'): Promise<void> {
    await m.insert(OidcIdentityEntity, { orgId: conn.orgId, issuer: conn.issuer, subject, userId, linkedBy: by, lastSignInAt: new Date() });
    await this.outbox.append(m, {
      orgId: conn.orgId,
      action: 'identity.oidc.identity_linked',
      outcome: 'success',
      actor: { userId },
      target: { type: 'user', id: userId },
      details: { issuer: conn.issuer, subject, linkedBy: by },
    });
  }

  private async createUser(m: EntityManager, conn: OidcConnectionEntity, email: string, claims: IdTokenClaims): Promise<string> {
    const name = typeof claims.name === 'string' && claims.name.trim() ? claims.name.trim().slice(0, 200) : email;
    // The account signs in through the IdP; its password is random and never shown (like SCIM's).
    const passwordHash = await this.hasher.hash(randomBytes(32).toString('base64url'));
    const userId = randomUUID();
    await m.insert(UserEntity, {
      id: userId,
      email,
      // eslint-disable-next-line no-control-regex -- taking control characters out is the point
      displayName: name.replace(/[\u0000-\u001f\u007f]/g, ' '),
      passwordHash,
      active: true,
      homeOrgId: conn.orgId,
    });
    await m.insert(MembershipEntity, { id: randomUUID(), orgId: conn.orgId, userId, roleId: null, capabilities: [] });
    const version = await this.events.policyChanged(m, conn.orgId, 'user.created', true);
    await this.events.directory(m, conn.orgId, version, { kind: 'user_role', userId, roleId: null });
    await this.outbox.append(m, {
      orgId: conn.orgId,
      action: 'identity.user.created',
      outcome: 'success',
      actor: { userId },
      target: { type: 'user', id: userId },
      details: { after: { userId, email, displayName: name, roleId: null }, policyVersion: version, via: 'oidc', issuer: conn.issuer },
    });
    return userId;
  }

  /**
   * The mappings decide the user's membership of the roles, groups and permission sets they name,
   * at every sign-in: what a matching mapping grants is added, what a mapping names but no
   * matching one grants is removed. Groups and sets no mapping names are left to the org's admins.
   */
  private async applyMappings(m: EntityManager, conn: OidcConnectionEntity, userId: string, claims: IdTokenClaims): Promise<void> {
    if (conn.mappings.length === 0) return;
    const orgId = conn.orgId;
    const matched = conn.mappings.filter((mp) => matches(claims[mp.claim], mp.value));
    const all = (list: ClaimMapping[], pick: (mp: ClaimMapping) => string[] | undefined): Set<string> =>
      new Set(list.flatMap((mp) => pick(mp) ?? []));
    const audit = (action: string, target: { type: string; id: string }, details: Record<string, unknown>): Promise<unknown> =>
      this.outbox.append(m, {
        orgId,
        action,
        outcome: 'success',
        actor: { userId },
        target,
        details: { ...details, via: 'oidc', issuer: conn.issuer },
      });

    const role = matched.find((mp) => mp.roleId)?.roleId;
    if (role) {
      const membership = await m.findOne(MembershipEntity, { where: { orgId, userId }, lock: { mode: 'pessimistic_write' } });
      const exists: unknown[] = await m.query('SELECT 1 FROM role WHERE org_id = $1 AND id = $2', [orgId, role]);
      if (membership && membership.roleId !== role && exists.length > 0) {
        await m.update(MembershipEntity, { id: membership.id }, { roleId: role });
        const version = await this.events.policyChanged(m, orgId, 'member.updated', true);
        await this.events.directory(m, orgId, version, { kind: 'user_role', userId, roleId: role });
        await audit(
          'identity.member.updated',
          { type: 'user', id: userId },
          {
            before: { roleId: membership.roleId },
            after: { roleId: role },
            policyVersion: version,
          },
        );
      }
    }

    const mappedGroups = all(conn.mappings, (mp) => mp.groupIds);
    const wantGroups = all(matched, (mp) => mp.groupIds);
    const haveGroups = new Set(
      (
        (await m.query('SELECT group_id FROM group_member WHERE org_id = $1 AND user_id = $2', [orgId, userId])) as Array<{
          group_id: string;
        }>
      )
        .map((r) => r.group_id)
        .filter((g) => mappedGroups.has(g)),
    );
    for (const groupId of wantGroups) {
      if (haveGroups.has(groupId)) continue;
      const added: unknown[] = await m.query(
        `INSERT INTO group_member (group_id, user_id, org_id) SELECT id, $2, org_id FROM user_group WHERE id = $1 AND org_id = $3
         ON CONFLICT DO NOTHING RETURNING group_id`,
        [groupId, userId, orgId],
      );
      if (added.length === 0) continue; // the group was deleted since the mapping was written
      const version = await this.events.policyChanged(m, orgId, 'group.member_added', true);
      await this.events.directory(m, orgId, version, { kind: 'group_member_added', groupId, userId });
      await audit('identity.group.member_added', { type: 'group', id: groupId }, { after: { userId }, policyVersion: version });
    }
    for (const groupId of haveGroups) {
      if (wantGroups.has(groupId)) continue;
      await m.query('DELETE FROM group_member WHERE group_id = $1 AND user_id = $2 AND org_id = $3', [groupId, userId, orgId]);
      const version = await this.events.policyChanged(m, orgId, 'group.member_removed', true);
      await this.events.directory(m, orgId, version, { kind: 'group_member_removed', groupId, userId });
      await audit('identity.group.member_removed', { type: 'group', id: groupId }, { before: { userId }, policyVersion: version });
    }

    const mappedSets = all(conn.mappings, (mp) => mp.permissionSetIds);
    const wantSets = all(matched, (mp) => mp.permissionSetIds);
    const haveSets = new Map(
      (
        (await m.query('SELECT id, permission_set_id FROM permission_set_assignment WHERE org_id = $1 AND user_id = $2', [
          orgId,
          userId,
        ])) as Array<{
          id: string;
          permission_set_id: string;
        }>
      )
        .filter((r) => mappedSets.has(r.permission_set_id))
        .map((r) => [r.permission_set_id, r.id]),
    );
    for (const setId of wantSets) {
      if (haveSets.has(setId)) continue;
      const id = randomUUID();
      const added: unknown[] = await m.query(
        `INSERT INTO permission_set_assignment (id, org_id, permission_set_id, user_id, group_id)
         SELECT $1, org_id, id, $3, NULL FROM permission_set WHERE id = $2 AND org_id = $4 RETURNING id`,
        [id, setId, userId, orgId],
      );
      if (added.length === 0) continue;
      const version = await this.events.policyChanged(m, orgId, 'permission_set.assigned', false);
      await audit(
        'identity.permission_set.assigned',
        { type: 'permission_set', id: setId },
        {
          after: { id, permissionSetId: setId, userId },
          assignee: { type: 'user', id: userId },
          policyVersion: version,
        },
      );
    }
    for (const [setId, assignmentId] of haveSets) {
      if (wantSets.has(setId)) continue;
      await m.query('DELETE FROM permission_set_assignment WHERE id = $1', [assignmentId]);
      const version = await this.events.policyChanged(m, orgId, 'permission_set.unassigned', false);
      await audit(
        'identity.permission_set.unassigned',
        { type: 'permission_set', id: setId },
        {
          before: { id: assignmentId, permissionSetId: setId, userId },
          assignee: { type: 'user', id: userId },
          policyVersion: version,
        },
      );
    }
  }
}
