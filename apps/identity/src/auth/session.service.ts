import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import { ErrorCode, type PrincipalSnapshot } from '@custodian/contracts';
import { CONFIG, CustodianException, OutboxWriter, type CustodianConfig } from '@custodian/platform';
import type { EntityManager } from 'typeorm';
import { MembershipEntity } from '../entities/membership.entity';
import { SessionEntity } from '../entities/session.entity';
import { UserEntity } from '../entities/user.entity';
import { IdentityEvents } from '../events/identity-events.service';

export interface IssuedRefresh {
  session: SessionEntity;
  refreshToken: string;
}

export interface SessionView {
  id: string;
  orgId: string;
  createdAt: string;
  expiresAt: string;
  current: boolean;
}

const INVALID_REFRESH = 'Invalid or expired refresh token';

/**
 * Sessions are refresh-token families. Each refresh rotates: the presented row is marked rotated
 * and a new row of the same family is issued; presenting a rotated token again is reuse, and
 * revokes the whole family (I6). Rows are locked, so two concurrent refreshes rotate at most once.
 *
 * Grace window: a client that sends two refreshes with one token at once (two tabs, a retry after a
 * lost response) would otherwise revoke its own session. A successor token is derived from the
 * presented token with the master key, so when the same token comes back within
 * `refreshReuseGraceSeconds` of its rotation and its successor is still unused, the answer is that
 * same successor (nothing new is issued and nothing plaintext is stored). Otherwise it is reuse.
 */
@Injectable()
export class SessionService {
  constructor(
    @Inject(IdentityEvents) private readonly events: IdentityEvents,
    @Inject(OutboxWriter) private readonly outbox: OutboxWriter,
    @Inject(CONFIG) private readonly config: CustodianConfig,
  ) {}

  keyedHash(value: string): string {
    return createHmac('sha256', this.config.secrets.masterKey!).update(value).digest('hex');
  }

  /** A new session row (family head) in the caller's transaction; the plaintext is returned once. */
  async issue(
    m: EntityManager,
    input: { userId: string; orgId: string; familyId?: string; refreshToken?: string },
  ): Promise<IssuedRefresh> {
    const refreshToken = input.refreshToken ?? `crt_${randomBytes(32).toString('base64url')}`;
    const session = m.create(SessionEntity, {
      id: randomUUID(),
      orgId: input.orgId,
      userId: input.userId,
      refreshHash: this.keyedHash(`refresh:${refreshToken}`),
      familyId: input.familyId ?? randomUUID(),
      expiresAt: new Date(Date.now() + this.config.auth.refreshTokenTtlSeconds * 1000),
      revokedAt: null,
      rotatedAt: null,
    });
    await m.insert(SessionEntity, session);
    return { session, refreshToken };
  }

  /** Exchanges a refresh token for the next one of its family, or detects reuse. */
  async rotate(refreshToken: string): Promise<IssuedRefresh> {
    const hash = this.keyedHash(`refresh:${refreshToken}`);
    const outcome = await this.events.transaction(async (m): Promise<IssuedRefresh | 'invalid' | 'reused'> => {
      const row = await m.findOne(SessionEntity, { where: { refreshHash: hash }, lock: { mode: 'pessimistic_write' } });
      if (!row || row.revokedAt !== null || row.expiresAt.getTime() <= Date.now()) return 'invalid';
      if (row.rotatedAt !== null) {
        const successor = await this.unusedSuccessorInGrace(m, row, refreshToken);
        if (successor) {
          if (!(await this.mayRefresh(m, successor.session))) return 'invalid';
          await this.outbox.append(m, {
            orgId: row.orgId,
            action: 'auth.refresh_grace',
            outcome: 'success',
            actor: { userId: row.userId, sessionId: successor.session.id },
            target: { type: 'session', id: successor.session.id },
            details: { previousSessionId: row.id, graceSeconds: this.config.auth.refreshReuseGraceSeconds },
          });
          return successor;
        }
        const ids = await this.revokeWhere(m, 'family_id = $1', [row.familyId]);
        await this.events.revoked(m, {
          orgId: row.orgId,
          kind: 'session',
          ids: ids.length ? ids : [row.id],
          reason: 'refresh_token_reused',
        });
        await this.outbox.append(m, {
          orgId: row.orgId,
          action: 'auth.refresh_reused',
          outcome: 'denied',
          actor: { userId: row.userId },
          target: { type: 'session_family', id: row.familyId },
          details: { revokedSessions: ids.length },
        });
        return 'reused';
      }
      if (!(await this.mayRefresh(m, row))) return 'invalid';
      await m.update(SessionEntity, { id: row.id }, { rotatedAt: () => 'now()' });
      const next = await this.issue(m, {
        userId: row.userId,
        orgId: row.orgId,
        familyId: row.familyId,
        refreshToken: this.successorToken(row, refreshToken),
      });
      await this.outbox.append(m, {
        orgId: row.orgId,
        action: 'auth.refresh',
        outcome: 'success',
        actor: { userId: row.userId, sessionId: next.session.id },
        target: { type: 'session', id: next.session.id },
        details: { previousSessionId: row.id },
      });
      return next;
    });
    if (outcome === 'invalid' || outcome === 'reused') throw new CustodianException(ErrorCode.Unauthenticated, INVALID_REFRESH);
    return outcome;
  }

  /** Ends the caller's session: its whole refresh family. */
  async logout(principal: PrincipalSnapshot): Promise<void> {
    if (!principal.sessionId) return;
    await this.events.transaction(async (m) => {
      const row = await m.findOne(SessionEntity, { where: { id: principal.sessionId } });
      if (!row) return;
      const ids = await this.revokeWhere(m, 'family_id = $1', [row.familyId]);
      if (ids.length === 0) return;
      await this.events.revoked(m, { orgId: principal.orgId, kind: 'session', ids, reason: 'logout' });
      await this.outbox.append(m, {
        orgId: principal.orgId,
        action: 'auth.logout',
        outcome: 'success',
        target: { type: 'session', id: principal.sessionId },
      });
    });
  }

  /** Ends every session of the caller, in every org. */
  async logoutAll(principal: PrincipalSnapshot): Promise<number> {
    return this.events.transaction(async (m) => {
      const ids = await this.revokeAllForUser(m, principal.userId, 'logout_all', principal.orgId);
      await this.outbox.append(m, {
        orgId: principal.orgId,
        action: 'auth.logout_all',
        outcome: 'success',
        target: { type: 'user', id: principal.userId },
        details: { revokedSessions: ids.length },
      });
      return ids.length;
    });
  }

  /** Revokes every live session of a user (deactivation, password change, logout-all) inside `m` (I7). */
  async revokeAllForUser(m: EntityManager, userId: string, reason: string, orgId: string | null): Promise<string[]> {
    const ids = await this.revokeWhere(m, 'user_id = $1', [userId]);
    await this.events.revoked(m, { orgId, kind: 'session', ids, reason });
    return ids;
  }

  /** Revokes a user's sessions in one org only (removal from that org). */
  async revokeForMembership(m: EntityManager, userId: string, orgId: string, reason: string): Promise<string[]> {
    const ids = await this.revokeWhere(m, 'user_id = $1 AND org_id = $2', [userId, orgId]);
    await this.events.revoked(m, { orgId, kind: 'session', ids, reason });
    return ids;
  }

  async list(principal: PrincipalSnapshot): Promise<SessionView[]> {
    const rows: Array<{ id: string; org_id: string; created_at: Date; expires_at: Date; family_id: string }> = await this.events.read((m) =>
      m.query(
        `SELECT id, org_id, created_at, expires_at, family_id FROM session
          WHERE user_id = $1 AND revoked_at IS NULL AND rotated_at IS NULL AND expires_at > now()
          ORDER BY created_at DESC LIMIT 200`,
        [principal.userId],
      ),
    );
    const currentFamily = principal.sessionId
      ? ((await this.events.read((m) => m.findOne(SessionEntity, { where: { id: principal.sessionId } })))?.familyId ?? null)
      : null;
    return rows.map((r) => ({
      id: r.id,
      orgId: r.org_id,
      createdAt: r.created_at.toISOString(),
      expiresAt: r.expires_at.toISOString(),
      current: r.family_id === currentFamily,
    }));
  }

  /** Revokes one of the caller's own sessions (its family); another user's id answers 404. */
  async revokeOwn(principal: PrincipalSnapshot, sessionId: string): Promise<void> {
    await this.events.transaction(async (m) => {
      const row = await m.findOne(SessionEntity, { where: { id: sessionId, userId: principal.userId } });
      if (!row || row.revokedAt !== null) throw CustodianException.notFound('Session not found');
      const ids = await this.revokeWhere(m, 'family_id = $1', [row.familyId]);
      await this.events.revoked(m, { orgId: row.orgId, kind: 'session', ids, reason: 'session_revoked' });
      await this.outbox.append(m, {
        orgId: principal.orgId,
        action: 'auth.session_revoked',
        outcome: 'success',
        target: { type: 'session', id: sessionId },
      });
    });
  }

  /** The user is still active and still a member of the session's org. */
  private async mayRefresh(m: EntityManager, row: SessionEntity): Promise<boolean> {
    const [user, membership] = await Promise.all([
      m.findOne(UserEntity, { where: { id: row.userId } }),
      m.findOne(MembershipEntity, { where: { userId: row.userId, orgId: row.orgId } }),
    ]);
    return Boolean(user?.active && membership);
  }

  /**
   * The refresh token that rotating `row` issues: secret (keyed with the master key) yet
   * reproducible from the presented token, so a racing duplicate can be given the same successor.
   */
  private successorToken(row: SessionEntity, presented: string): string {
    return `crt_${createHmac('sha256', this.config.secrets.masterKey!).update(`successor:${row.id}:${presented}`).digest('base64url')}`;
  }

  /**
   * For a rotated row presented again: its direct successor, locked, if the rotation is at most
   * the grace window old and the successor is still live and unused; otherwise undefined (reuse).
   */
  private async unusedSuccessorInGrace(m: EntityManager, row: SessionEntity, presented: string): Promise<IssuedRefresh | undefined> {
    const grace = this.config.auth.refreshReuseGraceSeconds;
    if (grace <= 0) return undefined;
    const refreshToken = this.successorToken(row, presented);
    // clock_timestamp(), not now(): this transaction may have waited on the row lock for a while.
    const rows: Array<{ id: string }> = await m.query(
      `SELECT s.id FROM session s JOIN session p ON p.id = $1
        WHERE s.refresh_hash = $2 AND s.family_id = p.family_id
          AND p.rotated_at >= clock_timestamp() - make_interval(secs => $3)
          AND s.revoked_at IS NULL AND s.rotated_at IS NULL AND s.expires_at > clock_timestamp()
        FOR UPDATE OF s`,
      [row.id, this.keyedHash(`refresh:${refreshToken}`), grace],
    );
    if (rows.length === 0) return undefined;
    const session = await m.findOneOrFail(SessionEntity, { where: { id: rows[0]!.id } });
    return { session, refreshToken };
  }

  private async revokeWhere(m: EntityManager, where: string, params: unknown[]): Promise<string[]> {
    const rows: Array<{ id: string }> = await m.query(
      `WITH u AS (UPDATE session SET revoked_at = now() WHERE ${where} AND revoked_at IS NULL RETURNING id) SELECT id FROM u`,
      params,
    );
    return rows.map((r) => r.id);
  }
}
