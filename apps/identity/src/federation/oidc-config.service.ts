import { Inject, Injectable } from '@nestjs/common';
import { ErrorCode, type PrincipalSnapshot } from '@custodian/contracts';
import {
  API_PREFIX,
  CONFIG,
  CustodianException,
  OutboxWriter,
  SettingsStore,
  type CustodianConfig,
  type SettingChange,
  type SettingDefinition,
} from '@custodian/platform';
import type { EntityManager } from 'typeorm';
import { IdentityEvents } from '../events/identity-events.service';
import { OidcClientCache, isAllowedIssuer, publicJwk, type PrivateKeyAlg } from './oidc-client';
import type { OidcConnectionInput } from './oidc-config.schemas';
import { OidcConnectionEntity, type ClaimMapping } from './oidc.entities';

export const OIDC_CLIENT_SECRET = 'oidc.client_secret';
export const OIDC_PRIVATE_KEY = 'oidc.private_key';

/** Identity's settings: the write-only secrets of the org's OIDC connection. */
export const OIDC_SETTINGS: readonly SettingDefinition[] = [
  { name: OIDC_CLIENT_SECRET, type: 'secret', description: 'Client secret of the OIDC connection', maxLength: 4096 },
  { name: OIDC_PRIVATE_KEY, type: 'secret', description: 'private_key_jwt signing key (PEM or JWK)', maxLength: 16384 },
];
export const OIDC_SETTINGS_STORE = Symbol('OIDC_SETTINGS_STORE');
export const OIDC_CLIENT_CACHE = Symbol('OIDC_CLIENT_CACHE');

export interface OidcConnectionView {
  issuer: string;
  clientId: string;
  clientAuth: OidcConnectionEntity['clientAuth'];
  privateKeyAlg: string | null;
  scopes: string[];
  enabled: boolean;
  jitProvisioning: boolean;
  linkExistingUsers: boolean;
  emailVerifiedClaim: string;
  allowedEmailDomains: string[];
  mappings: ClaimMapping[];
  passwordLogin: boolean;
  /** Where to send users, and what to register at the IdP. */
  startUrl: string;
  redirectUri: string;
  backchannelLogoutUri: string;
  jwksUri: string;
  clientSecret: { set: boolean; source: string | null };
  privateKey: { set: boolean; source: string | null };
  version: number;
  updatedAt: string;
}

function invalid(path: string, message: string): CustodianException {
  return new CustodianException(ErrorCode.ValidationFailed, 'Invalid OIDC connection', { issues: [{ path, message }] });
}

/**
 * The org's OIDC connection (one IdP per org): written by holders of manage_users and
 * manage_settings, every change audited without its secrets. The writer's capabilities are kept
 * with it: whoever controls the IdP can sign in as the identities it vouches for, so mappings may
 * grant nothing the writer does not hold, and sign-in never links to a member who holds more (R7).
 */
@Injectable()
export class OidcConfigService {
  constructor(
    @Inject(IdentityEvents) private readonly events: IdentityEvents,
    @Inject(OutboxWriter) private readonly outbox: OutboxWriter,
    @Inject(OIDC_SETTINGS_STORE) private readonly secrets: SettingsStore,
    @Inject(OIDC_CLIENT_CACHE) private readonly clients: OidcClientCache,
    @Inject(CONFIG) private readonly config: CustodianConfig,
  ) {}

  /** The public URLs of an org's connection. */
  urls(orgId: string): { startUrl: string; redirectUri: string; backchannelLogoutUri: string; jwksUri: string } {
    const base = `${this.config.agentGateway.publicUrl}/${API_PREFIX}/auth/oidc/${orgId}`.replace(/([^:])\/\/+/g, '$1/');
    return {
      startUrl: `${base}/start`,
      redirectUri: `${base}/callback`,
      backchannelLogoutUri: `${base}/backchannel-logout`,
      jwksUri: `${base}/jwks`,
    };
  }

  /** Where a browser sign-in (session=cookie) lands. */
  publicUrl(): string {
    return this.config.agentGateway.publicUrl.replace(/\/+$/, '');
  }

  consoleUrl(): string {
    return `${this.config.agentGateway.publicUrl}/console/`;
  }

  async get(actor: PrincipalSnapshot): Promise<OidcConnectionView> {
    return this.events.read(async (m) => {
      const row = await m.findOne(OidcConnectionEntity, { where: { orgId: actor.orgId } });
      if (!row) throw CustodianException.notFound('No OIDC connection is configured');
      return this.view(m, row);
    });
  }

  async put(actor: PrincipalSnapshot, input: OidcConnectionInput): Promise<OidcConnectionView> {
    if (!isAllowedIssuer(input.issuer))
      throw invalid('/issuer', 'an https URL without query, fragment or credentials (http only for 127.0.0.1 / localhost)');
    const scopes = input.scopes ?? ['openid', 'email', 'profile'];
    if (!scopes.includes('openid')) throw invalid('/scopes', 'must include openid');
    const clientAuth = input.clientAuth ?? 'client_secret_basic';
    const enabled = input.enabled ?? true;
    const passwordLogin = input.passwordLogin ?? true;
    // Nobody could sign in at all: password login off needs a working IdP.
    if (!passwordLogin && !enabled)
      throw invalid('/passwordLogin', 'password login can only be switched off while the connection is enabled');
    if (clientAuth === 'private_key_jwt' && input.privateKey && 'value' in input.privateKey) {
      try {
        publicJwk(input.privateKey.value, (input.privateKeyAlg ?? 'RS256') as PrivateKeyAlg);
      } catch {
        throw invalid('/privateKey/value', 'a PEM or JWK private key');
      }
    }
    const mappings = input.mappings ?? [];
    const result = await this.events.transaction(async (m) => {
      await this.checkMappings(m, actor, mappings);
      const before = await m.findOne(OidcConnectionEntity, { where: { orgId: actor.orgId }, lock: { mode: 'pessimistic_write' } });
      const secretChanges: SettingChange[] = [];
      if (input.clientSecret)
        secretChanges.push(await this.secrets.put(m, actor.orgId, OIDC_CLIENT_SECRET, input.clientSecret, actor.userId));
      if (input.privateKey) secretChanges.push(await this.secrets.put(m, actor.orgId, OIDC_PRIVATE_KEY, input.privateKey, actor.userId));
      const held = new Set((await this.secrets.view(m, actor.orgId)).filter((s) => s.secret?.set).map((s) => s.name));
      if (clientAuth === 'private_key_jwt' && !held.has(OIDC_PRIVATE_KEY))
        throw invalid('/privateKey', 'private_key_jwt needs a private key');
      if (clientAuth !== 'private_key_jwt' && !held.has(OIDC_CLIENT_SECRET))
        throw invalid('/clientSecret', `${clientAuth} needs a client secret`);
      const row: Omit<OidcConnectionEntity, 'createdAt' | 'updatedAt'> = {
        orgId: actor.orgId,
        issuer: input.issuer,
        clientId: input.clientId,
        clientAuth,
        privateKeyAlg: clientAuth === 'private_key_jwt' ? (input.privateKeyAlg ?? 'RS256') : null,
        scopes,
        enabled,
        jitProvisioning: input.jitProvisioning ?? true,
        linkExistingUsers: input.linkExistingUsers ?? false,
        emailVerifiedClaim: input.emailVerifiedClaim ?? 'email_verified',
        allowedEmailDomains: input.allowedEmailDomains ?? [],
        mappings,
        passwordLogin,
        writerCapabilities: [...actor.capabilities].sort(),
        version: (before?.version ?? 0) + 1,
      };
      if (before) await m.update(OidcConnectionEntity, { orgId: actor.orgId }, row);
      else await m.insert(OidcConnectionEntity, row);
      const saved = await m.findOneOrFail(OidcConnectionEntity, { where: { orgId: actor.orgId } });
      const after = await this.view(m, saved);
      await this.outbox.append(m, {
        orgId: actor.orgId,
        action: 'identity.oidc.connection_changed',
        outcome: 'success',
        target: { type: 'oidc_connection', id: actor.orgId },
        details: { before: before ? auditView(await this.view(m, before)) : null, after: auditView(after), secrets: secretChanges },
      });
      return after;
    });
    this.clients.forget(actor.orgId);
    return result;
  }

  /** Removes the connection and its secrets; password login is on again. Links stay for a later connection to the same issuer. */
  async remove(actor: PrincipalSnapshot): Promise<void> {
    await this.events.transaction(async (m) => {
      const before = await m.findOne(OidcConnectionEntity, { where: { orgId: actor.orgId }, lock: { mode: 'pessimistic_write' } });
      if (!before) throw CustodianException.notFound('No OIDC connection is configured');
      const view = await this.view(m, before);
      await m.delete(OidcConnectionEntity, { orgId: actor.orgId });
      const secrets = [
        await this.secrets.clear(m, actor.orgId, OIDC_CLIENT_SECRET),
        await this.secrets.clear(m, actor.orgId, OIDC_PRIVATE_KEY),
      ];
      await this.outbox.append(m, {
        orgId: actor.orgId,
        action: 'identity.oidc.connection_deleted',
        outcome: 'success',
        target: { type: 'oidc_connection', id: actor.orgId },
        details: { before: auditView(view), secrets: secrets.filter(Boolean) },
      });
    });
    this.clients.forget(actor.orgId);
  }

  /** The enabled connection of an org, or undefined (no connection, switched off, or not an org id). */
  async enabled(m: EntityManager, orgId: string): Promise<OidcConnectionEntity | undefined> {
    const row = await m.findOne(OidcConnectionEntity, { where: { orgId } });
    return row?.enabled ? row : undefined;
  }

  /** The connection's client credential (secret or private key), opened for this process's use only. */
  async credential(m: EntityManager, conn: OidcConnectionEntity): Promise<string | undefined> {
    const values = await this.secrets.resolve(m, conn.orgId);
    const value = values.get(conn.clientAuth === 'private_key_jwt' ? OIDC_PRIVATE_KEY : OIDC_CLIENT_SECRET);
    return typeof value === 'string' ? value : undefined;
  }

  /** The private_key_jwt key, for its public half (the connection's JWKS URL). */
  privateKeyOf(conn: OidcConnectionEntity): Promise<string | undefined> {
    return this.events.read((m) => this.credential(m, conn));
  }

  /**
   * Mapped roles, groups and permission sets must be the org's (R1), and what they grant — a set's
   * capabilities, those of the sets assigned to a mapped group — must be held by the writer: the
   * IdP could otherwise hand anyone more than the person who set it up holds (R7).
   */
  private async checkMappings(m: EntityManager, actor: PrincipalSnapshot, mappings: ClaimMapping[]): Promise<void> {
    const ids = (pick: (mp: ClaimMapping) => string[] | undefined): string[] => [...new Set(mappings.flatMap((mp) => pick(mp) ?? []))];
    const roles = ids((mp) => (mp.roleId ? [mp.roleId] : []));
    const groups = ids((mp) => mp.groupIds);
    const sets = ids((mp) => mp.permissionSetIds);
    const missing = async (table: string, list: string[], path: string): Promise<void> => {
      if (list.length === 0) return;
      const found: Array<{ id: string }> = await m.query(`SELECT id FROM ${table} WHERE org_id = $1 AND id = ANY($2::uuid[])`, [
        actor.orgId,
        list,
      ]);
      const known = new Set(found.map((r) => r.id));
      const absent = list.filter((id) => !known.has(id));
      if (absent.length > 0) throw invalid(path, `not in this organization: ${absent.join(', ')}`);
    };
    await missing('role', roles, '/mappings/roleId');
    await missing('user_group', groups, '/mappings/groupIds');
    await missing('permission_set', sets, '/mappings/permissionSetIds');
    if (groups.length === 0 && sets.length === 0) return;
    const granted: Array<{ c: string }> = await m.query(
      `SELECT DISTINCT jsonb_array_elements_text(
                COALESCE(ps.body -> 'systemCapabilities', '[]'::jsonb) || COALESCE(ps.body -> 'integrationCapabilities', '[]'::jsonb)) AS c
         FROM permission_set ps
        WHERE ps.org_id = $1
          AND (ps.id = ANY($2::uuid[])
               OR EXISTS (SELECT 1 FROM permission_set_assignment a
                           WHERE a.permission_set_id = ps.id AND a.org_id = ps.org_id AND a.group_id = ANY($3::uuid[])))`,
      [actor.orgId, sets, groups],
    );
    const beyond = granted.map((r) => r.c).filter((c) => !actor.capabilities.includes(c));
    if (beyond.length === 0) return;
    await this.events.transaction((tx) =>
      this.outbox.append(tx, {
        orgId: actor.orgId,
        action: 'identity.oidc.connection_denied',
        outcome: 'denied',
        target: { type: 'oidc_connection', id: actor.orgId },
        details: { reason: 'mapping_grants_more', capabilities: beyond.sort() },
      }),
    );
    throw CustodianException.forbidden('The mappings would grant capabilities you do not hold', {
      reason: 'mapping_grants_more',
      capabilities: beyond.sort(),
    });
  }

  private async view(m: EntityManager, row: OidcConnectionEntity): Promise<OidcConnectionView> {
    const secrets = await this.secrets.view(m, row.orgId);
    const secret = (name: string): { set: boolean; source: string | null } => {
      const s = secrets.find((v) => v.name === name)?.secret;
      return { set: Boolean(s?.set), source: s?.source ?? null };
    };
    return {
      issuer: row.issuer,
      clientId: row.clientId,
      clientAuth: row.clientAuth,
      privateKeyAlg: row.privateKeyAlg,
      scopes: row.scopes,
      enabled: row.enabled,
      jitProvisioning: row.jitProvisioning,
      linkExistingUsers: row.linkExistingUsers,
      emailVerifiedClaim: row.emailVerifiedClaim,
      allowedEmailDomains: row.allowedEmailDomains,
      mappings: row.mappings,
      passwordLogin: row.passwordLogin,
      ...this.urls(row.orgId),
      clientSecret: secret(OIDC_CLIENT_SECRET),
      privateKey: secret(OIDC_PRIVATE_KEY),
      version: row.version,
      updatedAt: (row.updatedAt ?? new Date()).toISOString(),
    };
  }
}

/** The connection as the audit trail keeps it: settings only (the secrets' state is in `secrets`). */
function auditView(v: OidcConnectionView): Record<string, unknown> {
  return {
    issuer: v.issuer,
    clientId: v.clientId,
    clientAuth: v.clientAuth,
    scopes: v.scopes,
    enabled: v.enabled,
    jitProvisioning: v.jitProvisioning,
    linkExistingUsers: v.linkExistingUsers,
    emailVerifiedClaim: v.emailVerifiedClaim,
    allowedEmailDomains: v.allowedEmailDomains,
    mappings: v.mappings,
    passwordLogin: v.passwordLogin,
    version: v.version,
  };
}
