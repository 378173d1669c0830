import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import { ErrorCode, type PrincipalSnapshot, type RequestOf, type GetPrincipalSnapshot } from '@custodian/contracts';
import { CONFIG, CustodianException, OutboxWriter, SERVICE_DATA_SOURCE, type CustodianConfig } from '@custodian/platform';
import type { DataSource } from 'typeorm';
import { MembershipEntity } from '../entities/membership.entity';
import { OrganizationEntity } from '../entities/organization.entity';
import { SessionEntity } from '../entities/session.entity';
import { UserEntity } from '../entities/user.entity';
import { ACCESS_TOKEN_TYPE_HEADER, SigningKeyService } from '../keys/signing-key.service';
import { PasswordHasher } from './password-hasher';

export const PASSWORD_HASHER = Symbol('PASSWORD_HASHER');

export interface TokenResponse {
  tokenType: 'Bearer';
  accessToken: string;
  expiresIn: number;
  refreshToken: string;
  orgId: string;
}

/** Login, logout and the principal snapshot other services ask for. */
@Injectable()
export class AuthService {
  constructor(
    @Inject(SERVICE_DATA_SOURCE) private readonly ds: DataSource,
    @Inject(OutboxWriter) private readonly outbox: OutboxWriter,
    @Inject(SigningKeyService) private readonly keys: SigningKeyService,
    @Inject(CONFIG) private readonly config: CustodianConfig,
    @Inject(PASSWORD_HASHER) private readonly hasher: PasswordHasher,
  ) {}

  async login(input: { email: string; password: string; orgId?: string }): Promise<TokenResponse> {
    const email = input.email.trim().toLowerCase();
    const user = await this.ds.getRepository(UserEntity).findOne({ where: { email } });
    const passwordOk = await this.hasher.verify(user?.passwordHash, input.password);
    const membership =
      user && passwordOk && user.active
        ? await this.ds.getRepository(MembershipEntity).findOne({
            where: input.orgId ? { userId: user.id, orgId: input.orgId } : { userId: user.id },
            order: { createdAt: 'ASC' },
          })
        : null;
    if (!user || !passwordOk || !user.active || !membership) {
      await this.ds.transaction((m) =>
        this.outbox.append(m, {
          orgId: membership?.orgId ?? null,
          action: 'auth.login_failed',
          outcome: 'failure',
          actor: user ? { userId: user.id } : {},
          target: { type: 'user', ...(user ? { id: user.id } : {}) },
          details: { emailHash: this.keyedHash(`email:${email}`) },
        }),
      );
      // One answer for unknown user, wrong password, inactive user and foreign org (no oracle).
      throw new CustodianException(ErrorCode.InvalidCredentials, 'Invalid email or password');
    }
    const refreshToken = `crt_${randomBytes(32).toString('base64url')}`;
    const session = await this.ds.transaction(async (m) => {
      const row = m.create(SessionEntity, {
        id: randomUUID(),
        orgId: membership.orgId,
        userId: user.id,
        refreshHash: this.keyedHash(`refresh:${refreshToken}`),
        familyId: randomUUID(),
        expiresAt: new Date(Date.now() + this.config.auth.refreshTokenTtlSeconds * 1000),
        revokedAt: null,
      });
      await m.insert(SessionEntity, row);
      await this.outbox.append(m, {
        orgId: membership.orgId,
        action: 'auth.login',
        outcome: 'success',
        actor: { userId: user.id, sessionId: row.id },
        target: { type: 'session', id: row.id },
      });
      return row;
    });
    const accessToken = await this.keys.sign(
      { sub: user.id, org: membership.orgId, sid: session.id },
      {
        issuer: this.config.auth.issuer,
        audience: this.config.auth.audience,
        ttlSeconds: this.config.auth.accessTokenTtlSeconds,
        typ: ACCESS_TOKEN_TYPE_HEADER,
      },
    );
    return { tokenType: 'Bearer', accessToken, expiresIn: this.config.auth.accessTokenTtlSeconds, refreshToken, orgId: membership.orgId };
  }

  async logout(principal: PrincipalSnapshot): Promise<void> {
    if (!principal.sessionId) return;
    await this.ds.transaction(async (m) => {
      const result = await m
        .createQueryBuilder()
        .update(SessionEntity)
        .set({ revokedAt: () => 'now()' })
        .where('id = :id AND revoked_at IS NULL', { id: principal.sessionId })
        .execute();
      if (result.affected) {
        await this.outbox.append(m, {
          orgId: principal.orgId,
          action: 'auth.logout',
          outcome: 'success',
          target: { type: 'session', id: principal.sessionId },
        });
      }
    });
  }

  /** The caller's snapshot, only while the user is active, a member, and the session is live. */
  async snapshot(req: RequestOf<typeof GetPrincipalSnapshot>): Promise<PrincipalSnapshot> {
    const [user, membership, org] = await Promise.all([
      this.ds.getRepository(UserEntity).findOne({ where: { id: req.userId } }),
      this.ds.getRepository(MembershipEntity).findOne({ where: { userId: req.userId, orgId: req.orgId } }),
      this.ds.getRepository(OrganizationEntity).findOne({ where: { id: req.orgId } }),
    ]);
    if (!user || !user.active || !membership || !org) throw CustodianException.unauthenticated('Unknown or inactive principal');
    if (req.sessionId) {
      const session = await this.ds.getRepository(SessionEntity).findOne({ where: { id: req.sessionId } });
      if (
        !session ||
        session.userId !== user.id ||
        session.orgId !== org.id ||
        session.revokedAt !== null ||
        session.expiresAt.getTime() <= Date.now()
      ) {
        throw CustodianException.unauthenticated('Session is no longer valid');
      }
    }
    return {
      userId: user.id,
      orgId: org.id,
      email: user.email,
      ...(req.sessionId ? { sessionId: req.sessionId } : {}),
      capabilities: [...membership.capabilities].sort(),
      roleId: null,
      groupIds: [],
      policyVersion: org.policyVersion,
    };
  }

  /** Keyed hash for secrets and identifiers that must be matchable but never stored in clear. */
  keyedHash(value: string): string {
    return createHmac('sha256', this.config.secrets.masterKey!).update(value).digest('hex');
  }
}
