import { randomUUID } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import type { PrincipalSnapshot } from '@custodian/contracts';
import { CustodianException, OutboxWriter } from '@custodian/platform';
import type { EntityManager } from 'typeorm';
import { IdentityEvents } from '../events/identity-events.service';
import { OAuthConsentEntity } from './oauth.entities';
import { PrincipalSnapshotService } from '../auth/principal-snapshot.service';
import { SessionService } from '../auth/session.service';
import { artifactKey, oauthRequest } from './oauth-store';

/** The delegation claims of an access token issued under a live consent (docs/sso.md). */
export interface ConsentClaims {
  org: string;
  sid: string;
  act: { sub: string };
  agent_name: string;
}

export interface ConsentView {
  id: string;
  clientId: string;
  clientName: string;
  scopes: string[];
  orgId: string;
  createdAt: string;
  expiresAt: string;
}

interface LiveConsent {
  id: string;
  org_id: string;
  user_id: string;
  session_id: string;
  client_id: string;
  client_name: string;
}

/**
 * A consent binds an OAuth grant to the Custodian session the password sign-in on the consent page
 * created. The session is the revocation handle: the gateway checks it on every request, and its
 * revocation is announced to every service (R10). So ending a grant — token revocation, a reused
 * refresh token, the user's revocation — revokes that session, and logout-all, a password change or
 * deactivation (which revoke the user's sessions) end the grant with it.
 */
@Injectable()
export class OAuthConsentsService {
  constructor(
    @Inject(IdentityEvents) private readonly events: IdentityEvents,
    @Inject(OutboxWriter) private readonly outbox: OutboxWriter,
    @Inject(SessionService) private readonly sessions: SessionService,
    @Inject(PrincipalSnapshotService) private readonly snapshots: PrincipalSnapshotService,
  ) {}

  /** Records the consent (and audits it) in one transaction. */
  async record(input: {
    grantId: string;
    orgId: string;
    userId: string;
    sessionId: string;
    clientId: string;
    clientName: string;
    scopes: string[];
    expiresAt: Date;
  }): Promise<void> {
    await this.events.transaction(async (m) => {
      const id = randomUUID();
      await m.insert(OAuthConsentEntity, { id, ...input, revokedAt: null });
      // A client someone consented to is kept as long as the consent lives (unconsented ones expire in a day).
      await m.query(
        `UPDATE oauth_model SET expires_at = GREATEST(expires_at, $2) WHERE model = 'Client' AND id_hash = $1 AND expires_at IS NOT NULL`,
        [artifactKey((v) => this.sessions.keyedHash(v), 'Client', input.clientId), input.expiresAt],
      );
      await this.outbox.append(m, {
        orgId: input.orgId,
        action: 'oauth.consent_granted',
        outcome: 'success',
        actor: { userId: input.userId, sessionId: input.sessionId },
        target: { type: 'oauth_consent', id },
        details: { clientId: input.clientId, clientName: input.clientName, scopes: input.scopes },
      });
    });
  }

  /** A refused consent (declined, or the user may not delegate to agents). */
  async denied(input: { orgId: string | null; userId?: string; clientId: string; reason: string }): Promise<void> {
    await this.events.transaction((m) =>
      this.outbox.append(m, {
        orgId: input.orgId,
        action: 'oauth.consent_denied',
        outcome: 'denied',
        actor: input.userId ? { userId: input.userId } : {},
        target: { type: 'oauth_client', id: input.clientId },
        details: { reason: input.reason },
      }),
    );
  }

  grantIsLive(grantId: string): Promise<boolean> {
    return this.events.read(async (m) => (await this.live(m, grantId)) !== undefined);
  }

  /**
   * The claims that make an access token the gateway's delegated agent token, for a live grant; the
   * issue is audited before the token leaves (A1: no audit, no token). Undefined when the grant ended.
   */
  async claimsFor(grantId: string, grantType: string, scope: string): Promise<ConsentClaims | undefined> {
    const found = await this.events.read((m) => this.live(m, grantId));
    if (!found) return undefined;
    // Every token is a new credential: the user must still be allowed to delegate to agents (R7).
    const principal = await this.snapshots.build({ userId: found.user_id, orgId: found.org_id, sessionId: found.session_id });
    if (!principal.capabilities.includes('agent_access')) return undefined;
    return this.events.transaction(async (m) => {
      const consent = await this.live(m, grantId);
      if (!consent) return undefined;
      await this.outbox.append(m, {
        orgId: consent.org_id,
        action: 'oauth.token_issued',
        outcome: 'success',
        actor: {
          userId: consent.user_id,
          sessionId: consent.session_id,
          agent: { clientId: consent.client_id, name: consent.client_name },
        },
        target: { type: 'oauth_consent', id: consent.id },
        details: { grantType, clientId: consent.client_id, scope },
      });
      return { org: consent.org_id, sid: consent.session_id, act: { sub: consent.client_id }, agent_name: consent.client_name };
    });
  }

  /** A client revoked one of its JWT access tokens (RFC 7009): the grant of that session and client ends. */
  async endForSession(sessionId: string, clientId: string): Promise<void> {
    await this.events.transaction(async (m) => {
      const row = await m.findOne(OAuthConsentEntity, { where: { sessionId, clientId }, lock: { mode: 'pessimistic_write' } });
      if (!row || row.revokedAt) return;
      await this.end(m, row, 'oauth_token_revoked');
      await m.query('DELETE FROM oauth_model WHERE grant_id = $1', [row.grantId]);
      await this.outbox.append(m, {
        orgId: row.orgId,
        action: 'oauth.token_revoked',
        outcome: 'success',
        actor: { userId: row.userId },
        target: { type: 'oauth_consent', id: row.id },
        details: { clientId: row.clientId, tokenType: 'access_token' },
      });
    });
  }

  /** oidc-provider ended the grant: the revocation endpoint, or a refresh token presented twice. */
  async grantEnded(grantId: string): Promise<void> {
    const endpoint = oauthRequest.getStore()?.endpoint;
    const action = endpoint === 'revocation' ? 'oauth.token_revoked' : endpoint === 'token' ? 'oauth.token_reused' : 'oauth.grant_ended';
    await this.events.transaction(async (m) => {
      const row = await m.findOne(OAuthConsentEntity, { where: { grantId }, lock: { mode: 'pessimistic_write' } });
      if (!row || row.revokedAt) return;
      await this.end(m, row, action === 'oauth.token_reused' ? 'oauth_token_reused' : 'oauth_token_revoked');
      await this.outbox.append(m, {
        orgId: row.orgId,
        action,
        outcome: action === 'oauth.token_reused' ? 'denied' : 'success',
        actor: { userId: row.userId },
        target: { type: 'oauth_consent', id: row.id },
        details: { clientId: row.clientId },
      });
    });
  }

  async clientRegistered(clientId: string, metadata: Record<string, unknown>): Promise<void> {
    const uris = Array.isArray(metadata.redirect_uris) ? metadata.redirect_uris.filter((u): u is string => typeof u === 'string') : [];
    await this.events.transaction((m) =>
      this.outbox.append(m, {
        orgId: null,
        action: 'oauth.client_registered',
        outcome: 'success',
        target: { type: 'oauth_client', id: clientId },
        details: {
          clientName: displayName(metadata.client_name, clientId),
          redirectUris: uris.slice(0, 8).map((u) => u.slice(0, 200)),
          authMethod: typeof metadata.token_endpoint_auth_method === 'string' ? metadata.token_endpoint_auth_method : undefined,
        },
      }),
    );
  }

  /** The caller's live consents, in the org they act in. */
  async list(principal: PrincipalSnapshot): Promise<ConsentView[]> {
    const rows = await this.events.read((m) =>
      m
        .createQueryBuilder(OAuthConsentEntity, 'c')
        .where('c.user_id = :user AND c.org_id = :org AND c.revoked_at IS NULL AND c.expires_at > now()', {
          user: principal.userId,
          org: principal.orgId,
        })
        .andWhere('EXISTS (SELECT 1 FROM session s WHERE s.id = c.session_id AND s.revoked_at IS NULL AND s.expires_at > now())')
        .orderBy('c.created_at', 'DESC')
        .take(200)
        .getMany(),
    );
    return rows.map((c) => ({
      id: c.id,
      clientId: c.clientId,
      clientName: c.clientName,
      scopes: c.scopes,
      orgId: c.orgId,
      createdAt: c.createdAt.toISOString(),
      expiresAt: c.expiresAt.toISOString(),
    }));
  }

  /** The user withdraws a consent: its session ends (access tokens refused), refresh refused; others' ids are 404. */
  async revoke(principal: PrincipalSnapshot, id: string): Promise<void> {
    await this.events.transaction(async (m) => {
      const row = await m.findOne(OAuthConsentEntity, {
        where: { id, userId: principal.userId, orgId: principal.orgId },
        lock: { mode: 'pessimistic_write' },
      });
      if (!row || row.revokedAt) throw CustodianException.notFound('Consent not found');
      await this.end(m, row, 'oauth_consent_revoked');
      await m.query('DELETE FROM oauth_model WHERE grant_id = $1', [row.grantId]);
      await this.outbox.append(m, {
        orgId: row.orgId,
        action: 'oauth.consent_revoked',
        outcome: 'success',
        target: { type: 'oauth_consent', id: row.id },
        details: { clientId: row.clientId },
      });
    });
  }

  /** Marks the consent revoked and revokes its session (announced to every service, R10). */
  private async end(m: EntityManager, row: OAuthConsentEntity, reason: string): Promise<void> {
    await m.update(OAuthConsentEntity, { id: row.id }, { revokedAt: () => 'now()' });
    const ids: Array<{ id: string }> = await m.query(
      `WITH u AS (UPDATE session SET revoked_at = now()
                   WHERE family_id = (SELECT family_id FROM session WHERE id = $1) AND revoked_at IS NULL RETURNING id)
       SELECT id FROM u`,
      [row.sessionId],
    );
    if (ids.length > 0) await this.events.revoked(m, { orgId: row.orgId, kind: 'session', ids: ids.map((r) => r.id), reason });
  }

  private async live(m: EntityManager, grantId: string): Promise<LiveConsent | undefined> {
    const rows: LiveConsent[] = await m.query(
      `SELECT c.id, c.org_id, c.user_id, c.session_id, c.client_id, c.client_name FROM oauth_consent c
         JOIN session s ON s.id = c.session_id AND s.revoked_at IS NULL AND s.expires_at > now()
         JOIN user_account u ON u.id = c.user_id AND u.active
         JOIN membership ms ON ms.user_id = c.user_id AND ms.org_id = c.org_id
        WHERE c.grant_id = $1 AND c.revoked_at IS NULL AND c.expires_at > now()`,
      [grantId],
    );
    return rows[0];
  }
}

/**
 * What a client calls itself, fit for a token claim, an audit event and a page: control characters
 * out, at most 200 characters (the gateway's limit for `agent_name`), the client id when empty.
 */
export function displayName(raw: unknown, clientId: string): string {
  // eslint-disable-next-line no-control-regex -- taking control characters out is the point
  const name = typeof raw === 'string' ? raw.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, ' ').trim() : '';
  return (name || clientId).slice(0, 200);
}
