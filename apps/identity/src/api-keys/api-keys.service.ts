import { createHmac, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import { ErrorCode, type PrincipalSnapshot } from '@custodian/contracts';
import { CONFIG, CustodianException, OutboxWriter, type CustodianConfig } from '@custodian/platform';
import { PrincipalSnapshotService } from '../auth/principal-snapshot.service';
import { ApiKeyEntity } from '../entities/api-key.entity';
import { IdentityEvents } from '../events/identity-events.service';
import { pageResult, type Page, type PageOf } from '../directory/directory.http';

/** `cak_` + 16 hex chars of public id + `_` + 43 base64url chars of secret (256 bits). */
const KEY_FORMAT = /^(cak_[0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;
const LAST_USED_RESOLUTION_MS = 60_000;

export interface ApiKeyView {
  id: string;
  name: string;
  prefix: string;
  userId: string;
  scopes: string[];
  expiresAt: string | null;
  lastUsedAt: string | null;
  revokedAt: string | null;
  createdAt: string;
}

const view = (k: ApiKeyEntity): ApiKeyView => ({
  id: k.id,
  name: k.name,
  prefix: k.prefix,
  userId: k.userId,
  scopes: k.scopes,
  expiresAt: k.expiresAt?.toISOString() ?? null,
  lastUsedAt: k.lastUsedAt?.toISOString() ?? null,
  revokedAt: k.revokedAt?.toISOString() ?? null,
  createdAt: k.createdAt.toISOString(),
});

/**
 * API keys (I8): the plaintext is returned once; only the public prefix and a keyed hash are
 * stored. Authentication does the same work for an unknown prefix and a wrong secret (one lookup,
 * one HMAC, one constant-time compare) and answers both with the same error.
 */
@Injectable()
export class ApiKeysService {
  constructor(
    @Inject(IdentityEvents) private readonly events: IdentityEvents,
    @Inject(OutboxWriter) private readonly outbox: OutboxWriter,
    @Inject(CONFIG) private readonly config: CustodianConfig,
    @Inject(PrincipalSnapshotService) private readonly snapshots: PrincipalSnapshotService,
  ) {}

  /**
   * A key never carries more than the credential that creates it: its scopes are a subset of the
   * creator's effective capabilities (no scopes = exactly those, written out, so the stored list is
   * always the whole truth), and a key made with a key expires no later than that key. Agents never
   * get here (the route refuses them); the check below keeps it so for any other caller.
   */
  async create(
    actor: PrincipalSnapshot,
    input: { name: string; scopes?: string[]; expiresAt?: string },
  ): Promise<ApiKeyView & { key: string }> {
    const createdWith = credentialOf(actor);
    const deny = async (details: Record<string, unknown>, error: CustodianException): Promise<never> => {
      await this.events.transaction((m) =>
        this.outbox.append(m, {
          orgId: actor.orgId,
          action: 'identity.api_key.denied',
          outcome: 'denied',
          actor: actorOf(actor),
          target: { type: 'api_key' },
          details: { ...details, createdWith },
        }),
      );
      throw error;
    };
    if (actor.agent) {
      await deny(
        { reason: 'delegated_credential' },
        CustodianException.forbidden('An agent cannot create, change or end credentials', { reason: 'delegated_credential' }),
      );
    }
    const scopes = [...new Set(input.scopes ?? actor.capabilities)].sort();
    const beyond = scopes.filter((s) => !actor.capabilities.includes(s));
    if (beyond.length > 0) {
      await deny({ beyond }, CustodianException.forbidden('An API key cannot carry capabilities you do not hold', { scopes: beyond }));
    }
    let expiresAt = input.expiresAt ? new Date(input.expiresAt) : null;
    if (expiresAt && expiresAt.getTime() <= Date.now())
      throw new CustodianException(ErrorCode.ValidationFailed, 'Invalid API key', {
        issues: [{ path: '/expiresAt', message: 'must be in the future' }],
      });
    const creatorExpiresAt = actor.apiKeyId && actor.credentialExpiresAt ? new Date(actor.credentialExpiresAt) : null;
    if (creatorExpiresAt) {
      if (expiresAt && expiresAt > creatorExpiresAt) {
        await deny(
          { reason: 'outlives_creating_key', expiresAt: expiresAt.toISOString(), creatorExpiresAt: creatorExpiresAt.toISOString() },
          CustodianException.forbidden('An API key made with an API key cannot outlive it', {
            expiresAt: creatorExpiresAt.toISOString(),
          }),
        );
      }
      expiresAt ??= creatorExpiresAt;
    }
    const prefix = `cak_${randomBytes(8).toString('hex')}`;
    const key = `${prefix}_${randomBytes(32).toString('base64url')}`;
    return this.events.transaction(async (m) => {
      const row = m.create(ApiKeyEntity, {
        id: randomUUID(),
        orgId: actor.orgId,
        userId: actor.userId,
        name: input.name,
        prefix,
        secretHash: this.hash(key),
        scopes,
        expiresAt,
        lastUsedAt: null,
        revokedAt: null,
      });
      await m.insert(ApiKeyEntity, row);
      const saved = await m.findOneOrFail(ApiKeyEntity, { where: { id: row.id } });
      await this.outbox.append(m, {
        orgId: actor.orgId,
        action: 'identity.api_key.created',
        outcome: 'success',
        actor: actorOf(actor),
        target: { type: 'api_key', id: row.id },
        details: { after: view(saved), createdWith },
      });
      return { ...view(saved), key };
    });
  }

  /** The caller's own keys; with manage_api_keys, every key of the org. */
  async list(actor: PrincipalSnapshot, page: Page): Promise<PageOf<ApiKeyView>> {
    const all = actor.capabilities.includes('manage_api_keys');
    const rows = await this.events.read((m) =>
      m.find(ApiKeyEntity, {
        where: all ? { orgId: actor.orgId } : { orgId: actor.orgId, userId: actor.userId },
        order: { createdAt: 'DESC', id: 'ASC' },
        take: page.limit + 1,
        skip: page.offset,
      }),
    );
    return pageResult(rows.map(view), page);
  }

  /** Revocation is effective at commit: every request with the key asks identity (R10). */
  async revoke(actor: PrincipalSnapshot, id: string): Promise<void> {
    await this.events.transaction(async (m) => {
      const row = await m.findOne(ApiKeyEntity, { where: { id, orgId: actor.orgId }, lock: { mode: 'pessimistic_write' } });
      const visible = row && (row.userId === actor.userId || actor.capabilities.includes('manage_api_keys'));
      if (!row || !visible) throw CustodianException.notFound('API key not found');
      if (row.revokedAt) return;
      await m.update(ApiKeyEntity, { id }, { revokedAt: () => 'now()' });
      await this.events.revoked(m, { orgId: actor.orgId, kind: 'api_key', ids: [id], reason: 'api_key_revoked' });
      const after = await m.findOneOrFail(ApiKeyEntity, { where: { id } });
      await this.outbox.append(m, {
        orgId: actor.orgId,
        action: 'identity.api_key.revoked',
        outcome: 'success',
        target: { type: 'api_key', id },
        details: { before: view(row), after: view(after) },
      });
    });
  }

  /** The principal of a presented key; every failure is the same `unauthenticated`. */
  async authenticate(presented: string): Promise<PrincipalSnapshot> {
    const match = KEY_FORMAT.exec(presented);
    const row = await this.events.read((m) => m.findOne(ApiKeyEntity, { where: { prefix: match?.[1] ?? 'cak_unknown' } }));
    const presentedHash = Buffer.from(this.hash(presented), 'hex');
    const storedHash = Buffer.from(row?.secretHash ?? this.hash('cak_0000000000000000_dummy'), 'hex');
    const secretOk = timingSafeEqual(presentedHash, storedHash) && row !== null && match !== null;
    if (!secretOk || !row || row.revokedAt !== null || (row.expiresAt && row.expiresAt.getTime() <= Date.now())) {
      throw CustodianException.unauthenticated('Invalid API key');
    }
    const snapshot = await this.snapshots.build({ userId: row.userId, orgId: row.orgId, apiKeyId: row.id });
    if (!row.lastUsedAt || Date.now() - row.lastUsedAt.getTime() > LAST_USED_RESOLUTION_MS) {
      await this.events.read((m) => m.update(ApiKeyEntity, { id: row.id }, { lastUsedAt: () => 'now()' }));
    }
    return snapshot;
  }

  private hash(key: string): string {
    return createHmac('sha256', this.config.secrets.masterKey!).update(`api-key:${key}`).digest('hex');
  }
}

/** The credential a request came with, as the audit trail records who created a key. */
function credentialOf(actor: PrincipalSnapshot): Record<string, string> {
  if (actor.apiKeyId) return { kind: 'api_key', apiKeyId: actor.apiKeyId };
  if (actor.sessionId) return { kind: 'session', sessionId: actor.sessionId };
  return { kind: 'unknown' };
}

/** The audit actor named from the snapshot itself, not only from the request context. */
function actorOf(actor: PrincipalSnapshot): { userId: string; sessionId?: string; apiKeyId?: string } {
  return {
    userId: actor.userId,
    ...(actor.sessionId ? { sessionId: actor.sessionId } : {}),
    ...(actor.apiKeyId ? { apiKeyId: actor.apiKeyId } : {}),
  };
}
