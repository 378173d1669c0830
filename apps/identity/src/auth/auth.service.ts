import { Inject, Injectable } from '@nestjs/common';
import { ErrorCode, type GetPrincipalSnapshot, type PrincipalSnapshot, type RequestOf } from '@custodian/contracts';
import { CONFIG, CustodianException, OutboxWriter, requestContext, type CustodianConfig } from '@custodian/platform';
import { MembershipEntity } from '../entities/membership.entity';
import { UserEntity } from '../entities/user.entity';
import { IdentityEvents } from '../events/identity-events.service';
import { ACCESS_TOKEN_TYPE_HEADER, SigningKeyService } from '../keys/signing-key.service';
import { LoginThrottleService, type ThrottleKeys } from './login-throttle.service';
import { PASSWORD_HASHER, type PasswordHasher } from './password-hasher';
import { PrincipalSnapshotService } from './principal-snapshot.service';
import { SessionService } from './session.service';

export { PASSWORD_HASHER } from './password-hasher';

export interface TokenResponse {
  tokenType: 'Bearer';
  accessToken: string;
  expiresIn: number;
  refreshToken: string;
  orgId: string;
}

/** Login, refresh, logout and the principal snapshot other services ask for. */
@Injectable()
export class AuthService {
  constructor(
    @Inject(IdentityEvents) private readonly events: IdentityEvents,
    @Inject(OutboxWriter) private readonly outbox: OutboxWriter,
    @Inject(SigningKeyService) private readonly keys: SigningKeyService,
    @Inject(CONFIG) private readonly config: CustodianConfig,
    @Inject(PASSWORD_HASHER) private readonly hasher: PasswordHasher,
    @Inject(SessionService) private readonly sessions: SessionService,
    @Inject(LoginThrottleService) private readonly throttle: LoginThrottleService,
    @Inject(PrincipalSnapshotService) private readonly snapshots: PrincipalSnapshotService,
  ) {}

  async login(input: { email: string; password: string; orgId?: string }): Promise<TokenResponse> {
    const email = input.email.trim().toLowerCase();
    const keys: ThrottleKeys = this.throttle.keysFor(email, requestContext.current()?.ip);
    const wait = await this.throttle.retryAfter(keys);
    const user = await this.events.read((m) => m.findOne(UserEntity, { where: { email } }));
    // The password work is done on every path, locked or not, known user or not (same cost, no oracle).
    const passwordOk = await this.hasher.verify(user?.passwordHash, input.password);
    const emailHash = this.sessions.keyedHash(`email:${email}`);
    if (wait > 0) {
      await this.events.transaction((m) =>
        this.outbox.append(m, {
          orgId: null,
          action: 'auth.login_locked',
          outcome: 'denied',
          actor: user ? { userId: user.id } : {},
          target: { type: 'user', ...(user ? { id: user.id } : {}) },
          details: { emailHash, retryAfterSeconds: wait },
        }),
      );
      throw new CustodianException(ErrorCode.RateLimited, 'Too many failed sign-in attempts; try again later', { retryAfterSeconds: wait });
    }
    const membership =
      user && passwordOk && user.active
        ? await this.events.read((m) =>
            m.findOne(MembershipEntity, {
              where: input.orgId ? { userId: user.id, orgId: input.orgId } : { userId: user.id },
              order: { createdAt: 'ASC' },
            }),
          )
        : null;
    if (!user || !passwordOk || !user.active || !membership) {
      await this.events.transaction(async (m) => {
        await this.throttle.recordFailure(m, keys);
        await this.outbox.append(m, {
          orgId: membership?.orgId ?? null,
          action: 'auth.login_failed',
          outcome: 'failure',
          actor: user ? { userId: user.id } : {},
          target: { type: 'user', ...(user ? { id: user.id } : {}) },
          details: { emailHash },
        });
      });
      // One answer for unknown user, wrong password, inactive user and foreign org (no oracle).
      throw new CustodianException(ErrorCode.InvalidCredentials, 'Invalid email or password');
    }
    // An org that signs in only through its identity provider (docs/sso.md) refuses passwords. Checked
    // after the password proved right, so the answer says nothing about accounts to a guesser.
    const ssoOnly: unknown[] = await this.events.read((m) =>
      m.query('SELECT 1 FROM oidc_connection WHERE org_id = $1 AND enabled AND NOT password_login', [membership.orgId]),
    );
    if (ssoOnly.length > 0) {
      await this.events.transaction((m) =>
        this.outbox.append(m, {
          orgId: membership.orgId,
          action: 'auth.login_failed',
          outcome: 'failure',
          actor: { userId: user.id },
          target: { type: 'user', id: user.id },
          details: { emailHash, reason: ErrorCode.PasswordLoginDisabled },
        }),
      );
      throw new CustodianException(ErrorCode.PasswordLoginDisabled, 'This organization signs in through its identity provider', {
        signInUrl: `${this.config.agentGateway.publicUrl}/api/v1/auth/oidc/${membership.orgId}/start`,
      });
    }
    const issued = await this.events.transaction(async (m) => {
      await this.throttle.recordSuccess(m, keys);
      const next = await this.sessions.issue(m, { userId: user.id, orgId: membership.orgId });
      await this.outbox.append(m, {
        orgId: membership.orgId,
        action: 'auth.login',
        outcome: 'success',
        actor: { userId: user.id, sessionId: next.session.id },
        target: { type: 'session', id: next.session.id },
      });
      return next;
    });
    return this.tokenResponse(user.id, membership.orgId, issued.session.id, issued.refreshToken);
  }

  /**
   * The caller changes their own password, proving the current one. The proof is a password guess
   * like a login's, so it is throttled with the same counters (a stolen access token must not buy
   * unlimited guesses); on success every session of the user ends (I7).
   */
  async changeOwnPassword(actor: PrincipalSnapshot, currentPassword: string, newPassword: string): Promise<void> {
    const user = await this.events.read((m) => m.findOne(UserEntity, { where: { id: actor.userId } }));
    const keys = this.throttle.keysFor(user?.email ?? `user:${actor.userId}`, requestContext.current()?.ip);
    const wait = await this.throttle.retryAfter(keys);
    // As for a login, the password work is done whether locked or not.
    const ok = await this.hasher.verify(user?.passwordHash, currentPassword);
    if (wait > 0) {
      await this.events.transaction((m) =>
        this.outbox.append(m, {
          orgId: actor.orgId,
          action: 'auth.password_change_locked',
          outcome: 'denied',
          target: { type: 'user', id: actor.userId },
          details: { retryAfterSeconds: wait },
        }),
      );
      throw new CustodianException(ErrorCode.RateLimited, 'Too many failed password attempts; try again later', {
        retryAfterSeconds: wait,
      });
    }
    if (!user || !ok) {
      await this.events.transaction(async (m) => {
        await this.throttle.recordFailure(m, keys);
        await this.outbox.append(m, {
          orgId: actor.orgId,
          action: 'auth.password_change_failed',
          outcome: 'failure',
          target: { type: 'user', id: actor.userId },
        });
      });
      throw new CustodianException(ErrorCode.InvalidCredentials, 'Invalid email or password');
    }
    const passwordHash = await this.hasher.hash(newPassword);
    await this.events.transaction(async (m) => {
      await this.throttle.recordSuccess(m, keys);
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

  async refresh(refreshToken: string): Promise<TokenResponse> {
    const { session, refreshToken: next } = await this.sessions.rotate(refreshToken);
    return this.tokenResponse(session.userId, session.orgId, session.id, next);
  }

  logout(principal: PrincipalSnapshot): Promise<void> {
    return this.sessions.logout(principal);
  }

  /** The caller's snapshot, only while the user is active, a member, and the session or key is live. */
  snapshot(req: RequestOf<typeof GetPrincipalSnapshot>): Promise<PrincipalSnapshot> {
    return this.snapshots.build(req);
  }

  /**
   * Signs an access token; `extra` carries the delegation claims of agent tokens. `audience` is the
   * REST API unless the token exchange asked for the MCP resource.
   */
  async accessToken(
    claims: { sub: string; org: string; sid?: string; [claim: string]: unknown },
    ttlSeconds = this.config.auth.accessTokenTtlSeconds,
    audience: 'api' | 'mcp' = 'api',
  ): Promise<string> {
    return this.keys.sign(claims, {
      issuer: this.config.auth.issuer,
      audience: audience === 'mcp' ? this.config.auth.mcpResource : this.config.auth.audience,
      ttlSeconds,
      typ: ACCESS_TOKEN_TYPE_HEADER,
    });
  }

  accessTokenTtl(): number {
    return this.config.auth.accessTokenTtlSeconds;
  }

  private async tokenResponse(userId: string, orgId: string, sessionId: string, refreshToken: string): Promise<TokenResponse> {
    const accessToken = await this.accessToken({ sub: userId, org: orgId, sid: sessionId });
    return { tokenType: 'Bearer', accessToken, expiresIn: this.config.auth.accessTokenTtlSeconds, refreshToken, orgId };
  }
}
