import { randomBytes } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import type { PrincipalSnapshot } from '@custodian/contracts';
import { CustodianException, OutboxWriter } from '@custodian/platform';
import { heldCapabilities } from '../auth/principal-snapshot.service';
import type { EntityManager } from 'typeorm';
import { conflictOnDuplicate } from '../directory/directory.http';
import { UsersService } from '../directory/users.service';
import { UserEntity } from '../entities/user.entity';
import { IdentityEvents } from '../events/identity-events.service';
import { ScimUserEntity } from './scim.entities';
import {
  SCHEMA_ENTERPRISE_USER,
  SCHEMA_USER,
  ScimError,
  invalidPath,
  invalidValue,
  listResponse,
  scimBoolean,
  scimString,
  uniqueness,
  type EqFilter,
  type PatchOperation,
  type ScimPage,
} from './scim.http';

/** The attributes a SCIM user has here; everything else an IdP sends is accepted and not kept (docs/sso.md). */
interface UserState {
  userName: string;
  externalId: string | null;
  givenName: string | null;
  familyName: string | null;
  displayName: string;
  email: string;
  active: boolean;
}

interface UserRow {
  id: string;
  email: string;
  display_name: string;
  active: boolean;
  created_at: Date;
  updated_at: Date;
  user_name: string | null;
  external_id: string | null;
  given_name: string | null;
  family_name: string | null;
  scim_updated_at: Date | null;
}

// Only accounts whose home is this org: they are the ones its provisioning may change (a member who
// joined from another org is that org's to provision).
const USER_SELECT = `SELECT u.id, u.email, u.display_name, u.active, u.created_at, u.updated_at,
    s.user_name, s.external_id, s.given_name, s.family_name, s.updated_at AS scim_updated_at
  FROM membership m JOIN user_account u ON u.id = m.user_id AND u.home_org_id = m.org_id
  LEFT JOIN scim_user s ON s.org_id = m.org_id AND s.user_id = u.id
  WHERE m.org_id = $1`;

const FILTER_SQL: Record<string, string> = {
  userName: 'coalesce(s.user_name, u.email) = lower($2)',
  externalId: 's.external_id = $2',
  'emails.value': 'u.email = lower($2)',
  emails: 'u.email = lower($2)',
  displayName: 'u.display_name = $2',
};
export const USER_FILTER_ATTRIBUTES = Object.keys(FILTER_SQL);

const EMAIL = /^[^\s@]{1,200}@[^\s@]{1,118}$/;

/**
 * Standard SCIM user attributes Custodian does not keep. Entra ID's default mapping sends several
 * of them; refusing them would stop its provisioning, so they are accepted and dropped.
 */
const NOT_KEPT = new Set(
  [
    'title',
    'preferredLanguage',
    'locale',
    'timezone',
    'nickName',
    'profileUrl',
    'userType',
    'phoneNumbers',
    'addresses',
    'photos',
    'ims',
    'entitlements',
    'roles',
    'x509Certificates',
    'password',
    'name.formatted',
    'name.middleName',
    'name.honorificPrefix',
    'name.honorificSuffix',
  ].map((a) => a.toLowerCase()),
);

function userView(r: UserRow, location: string): Record<string, unknown> {
  const lastModified = r.scim_updated_at && r.scim_updated_at > r.updated_at ? r.scim_updated_at : r.updated_at;
  return {
    schemas: [SCHEMA_USER],
    id: r.id,
    ...(r.external_id ? { externalId: r.external_id } : {}),
    userName: r.user_name ?? r.email,
    name: {
      ...(r.given_name ? { givenName: r.given_name } : {}),
      ...(r.family_name ? { familyName: r.family_name } : {}),
      formatted: r.display_name,
    },
    displayName: r.display_name,
    emails: [{ value: r.email, type: 'work', primary: true }],
    active: r.active,
    meta: {
      resourceType: 'User',
      created: r.created_at.toISOString(),
      lastModified: lastModified.toISOString(),
      location: `${location}/Users/${r.id}`,
    },
  };
}

const stateOf = (r: UserRow): UserState => ({
  userName: r.user_name ?? r.email,
  externalId: r.external_id,
  givenName: r.given_name,
  familyName: r.family_name,
  displayName: r.display_name,
  email: r.email,
  active: r.active,
});

/**
 * SCIM Users (RFC 7643 §4.1, RFC 7644) over the existing directory: accounts are created, changed
 * and deactivated through UsersService, so the home-org rule, session revocation on deactivation
 * and the identity.user.* audit rows are the same as for the REST API. SCIM's own attributes live
 * in scim_user and are written in the same transaction.
 */
@Injectable()
export class ScimUsersService {
  constructor(
    @Inject(IdentityEvents) private readonly events: IdentityEvents,
    @Inject(OutboxWriter) private readonly outbox: OutboxWriter,
    @Inject(UsersService) private readonly users: UsersService,
  ) {}

  async list(actor: PrincipalSnapshot, filter: EqFilter | undefined, page: ScimPage, location: string): Promise<Record<string, unknown>> {
    const where = filter ? ` AND ${FILTER_SQL[filter.attribute]}` : '';
    const params = filter ? [actor.orgId, filter.value] : [actor.orgId];
    return this.events.read(async (m) => {
      const [{ n }] = (await m.query(`SELECT count(*)::int AS n FROM (${USER_SELECT}${where}) t`, params)) as Array<{ n: number }>;
      const rows: UserRow[] =
        page.count === 0
          ? []
          : await m.query(`${USER_SELECT}${where} ORDER BY u.created_at, u.id LIMIT $${params.length + 1} OFFSET $${params.length + 2}`, [
              ...params,
              page.count,
              page.startIndex - 1,
            ]);
      return listResponse(
        rows.map((r) => userView(r, location)),
        n,
        page,
      );
    });
  }

  async get(actor: PrincipalSnapshot, id: string, location: string): Promise<Record<string, unknown>> {
    return userView(await this.events.read((m) => this.row(m, actor.orgId, id)), location);
  }

  /**
   * A new account in the token's org. An address that already has an account is a uniqueness
   * conflict: here the IdP finds it by filter first (userName defaults to the email), and an
   * account of another org can never be provisioned by this one (invite it through the REST API).
   */
  async create(actor: PrincipalSnapshot, body: unknown, location: string): Promise<Record<string, unknown>> {
    const state = this.fromResource(body, undefined);
    const taken: Array<{ one: number }> = await this.events.read((m) =>
      m.query(
        `SELECT 1 AS one FROM scim_user WHERE org_id = $1 AND (user_name = $2 OR external_id = $3)
         UNION ALL SELECT 1 FROM user_account WHERE email = $4`,
        [actor.orgId, state.userName, state.externalId, state.email],
      ),
    );
    if (taken.length > 0) throw uniqueness('A user with this userName, externalId or email exists');
    // Provisioned users sign in through the identity provider; the password is random and never shown.
    const password = randomBytes(32).toString('base64url');
    const result = await this.users.create(actor, { email: state.email, displayName: state.displayName, password }, (m, userId) =>
      this.writeAttributes(m, actor, userId, undefined, state),
    );
    // Only a concurrent creation of the same address gets here: the directory invited it instead.
    if (result.status !== 201) throw uniqueness('A user with this email exists');
    if (!state.active) await this.users.update(actor, result.body.id, { active: false });
    return this.get(actor, result.body.id, location);
  }

  /** PUT: the resource as sent replaces what is kept (attributes left out are cleared where they may be). */
  async replace(actor: PrincipalSnapshot, id: string, body: unknown, location: string): Promise<Record<string, unknown>> {
    const current = stateOf(await this.events.read((m) => this.row(m, actor.orgId, id)));
    return this.apply(actor, id, current, this.fromResource(body, current), location);
  }

  async patch(actor: PrincipalSnapshot, id: string, ops: PatchOperation[], location: string): Promise<Record<string, unknown>> {
    const current = stateOf(await this.events.read((m) => this.row(m, actor.orgId, id)));
    const next = { ...current };
    for (const op of ops) applyOperation(next, op);
    return this.apply(actor, id, current, next, location);
  }

  /** DELETE deactivates: the account belongs to the org's history (audit, ownership), so it is kept, inactive. */
  async deactivate(actor: PrincipalSnapshot, id: string): Promise<void> {
    const current = stateOf(await this.events.read((m) => this.row(m, actor.orgId, id)));
    await this.apply(actor, id, current, { ...current, active: false }, '');
  }

  private async apply(
    actor: PrincipalSnapshot,
    id: string,
    current: UserState,
    next: UserState,
    location: string,
  ): Promise<Record<string, unknown>> {
    if (JSON.stringify(next) === JSON.stringify(current)) return this.get(actor, id, location);
    const input = {
      ...(next.displayName !== current.displayName ? { displayName: next.displayName } : {}),
      ...(next.active !== current.active ? { active: next.active } : {}),
    };
    // Deactivation goes through the directory's own path: the account's sessions end and its API
    // keys stop working (the snapshot refuses an inactive user) in this same transaction.
    await this.users.update(actor, id, input, async (m, user) => {
      if (user.homeOrgId !== actor.orgId) throw new ScimError(404, undefined, 'User not found');
      if (next.email !== current.email) {
        // The email is the sign-in name: whoever moves it could take the account over (a reset sent
        // there, a future IdP link by address), so the target may hold nothing the caller does not.
        const beyond = (await heldCapabilities(m, id)).filter((c) => !actor.capabilities.includes(c));
        if (beyond.length > 0) {
          throw CustodianException.forbidden('You cannot change the email of a user who holds capabilities you do not', {
            reason: 'target_holds_more',
            capabilities: beyond,
          });
        }
        await conflictOnDuplicate(m.update(UserEntity, { id }, { email: next.email }), 'A user with this email exists');
      }
      await this.writeAttributes(m, actor, id, current, next);
    });
    return this.get(actor, id, location);
  }

  private async writeAttributes(
    m: EntityManager,
    actor: PrincipalSnapshot,
    userId: string,
    before: UserState | undefined,
    after: UserState,
  ): Promise<void> {
    const attrs = (s: UserState | undefined) =>
      s ? { userName: s.userName, externalId: s.externalId, givenName: s.givenName, familyName: s.familyName } : null;
    const [b, a] = [attrs(before), attrs(after)];
    if (JSON.stringify(b) === JSON.stringify(a)) return;
    await conflictOnDuplicate(
      m.upsert(ScimUserEntity, { orgId: actor.orgId, userId, ...a! }, { conflictPaths: ['orgId', 'userId'] }),
      'A user with this userName or externalId exists',
    );
    await this.outbox.append(m, {
      orgId: actor.orgId,
      action: 'identity.scim.user.updated',
      outcome: 'success',
      target: { type: 'user', id: userId },
      details: { before: b, after: a },
    });
  }

  private async row(m: EntityManager, orgId: string, id: string): Promise<UserRow> {
    const rows: UserRow[] = /^[0-9a-f-]{36}$/.test(id) ? await m.query(`${USER_SELECT} AND u.id = $2`, [orgId, id]) : [];
    if (rows.length === 0) throw new ScimError(404, undefined, 'User not found');
    return rows[0];
  }

  /** Reads a full User resource (POST, PUT); `current` fills what PUT may not clear. */
  private fromResource(body: unknown, current: UserState | undefined): UserState {
    const r = body as Record<string, unknown> | null;
    if (!r || typeof r !== 'object' || Array.isArray(r)) throw new ScimError(400, 'invalidSyntax', 'A User resource must be an object');
    if (!Array.isArray(r.schemas) || !r.schemas.includes(SCHEMA_USER)) {
      throw new ScimError(400, 'invalidSyntax', `A User resource needs schemas ["${SCHEMA_USER}"]`);
    }
    const state: UserState = {
      userName: '',
      // An IdP that leaves externalId out of a PUT has not meant to forget its own id.
      externalId: current?.externalId ?? null,
      givenName: null,
      familyName: null,
      displayName: '',
      email: current?.email ?? '',
      active: true,
    };
    for (const [key, value] of Object.entries(r)) {
      if (key === 'schemas' || key === 'id' || key === 'meta' || key === 'groups') continue;
      setAttribute(state, key, value);
    }
    if (!state.userName) throw invalidValue('userName is required');
    if (!state.email) {
      if (!EMAIL.test(state.userName)) throw invalidValue('an email is required (emails, or a userName that is an address)');
      state.email = state.userName.toLowerCase();
    }
    if (!state.displayName) state.displayName = [state.givenName, state.familyName].filter(Boolean).join(' ') || state.userName;
    return state;
  }
}

/** One PATCH operation on the user's attributes (Okta: value objects without path; Entra ID: a path per attribute). */
function applyOperation(state: UserState, op: PatchOperation): void {
  if (op.path === undefined) {
    if (op.op === 'remove') throw new ScimError(400, 'noTarget', 'remove needs a path');
    if (!op.value || typeof op.value !== 'object' || Array.isArray(op.value))
      throw invalidValue('an operation without path needs an object value');
    for (const [key, value] of Object.entries(op.value as Record<string, unknown>)) {
      if (key === 'id' || key === 'schemas' || key === 'meta') continue;
      setAttribute(state, key, value);
    }
    return;
  }
  if (op.op === 'remove') {
    removeAttribute(state, op.path);
    return;
  }
  setAttribute(state, op.path, op.value);
}

function normalizePath(path: string): string {
  const core = `${SCHEMA_USER}:`;
  return path.startsWith(core) ? path.slice(core.length) : path;
}

function setAttribute(state: UserState, rawPath: string, value: unknown): void {
  const path = normalizePath(rawPath);
  const lower = path.toLowerCase();
  if (lower.startsWith(SCHEMA_ENTERPRISE_USER.toLowerCase()) || NOT_KEPT.has(lower) || NOT_KEPT.has(lower.replace(/\[.*$/, ''))) return;
  switch (lower) {
    case 'username':
      state.userName = scimString(value, 'userName', 320).trim().toLowerCase();
      return;
    case 'externalid':
      state.externalId = value === null ? null : scimString(value, 'externalId', 255);
      return;
    case 'displayname':
      state.displayName = scimString(value, 'displayName', 200);
      return;
    case 'active':
      state.active = scimBoolean(value, 'active');
      return;
    case 'name': {
      if (!value || typeof value !== 'object' || Array.isArray(value)) throw invalidValue('name must be an object');
      for (const [k, v] of Object.entries(value as Record<string, unknown>)) setAttribute(state, `name.${k}`, v);
      return;
    }
    case 'name.givenname':
      state.givenName = value === null ? null : scimString(value, 'name.givenName', 200, true) || null;
      return;
    case 'name.familyname':
      state.familyName = value === null ? null : scimString(value, 'name.familyName', 200, true) || null;
      return;
    case 'emails':
      state.email = pickEmail(value);
      return;
    case 'emails[type eq "work"].value':
    case 'emails[primary eq true].value':
      state.email = email(value);
      return;
  }
  if (lower.startsWith('name.')) return; // other name parts are not kept
  throw invalidPath(`${path.slice(0, 100)} is not an attribute of a User here`);
}

function removeAttribute(state: UserState, rawPath: string): void {
  const lower = normalizePath(rawPath).toLowerCase();
  if (lower.startsWith(SCHEMA_ENTERPRISE_USER.toLowerCase()) || NOT_KEPT.has(lower.replace(/\[.*$/, ''))) return;
  if (lower === 'externalid') state.externalId = null;
  else if (lower === 'name.givenname') state.givenName = null;
  else if (lower === 'name.familyname') state.familyName = null;
  else throw new ScimError(400, 'mutability', `${rawPath.slice(0, 100)} cannot be removed`);
}

function email(value: unknown): string {
  const v = scimString(value, 'email', 320).trim().toLowerCase();
  if (!EMAIL.test(v)) throw invalidValue('email must be an address');
  return v;
}

/** The primary address, else the work one, else the first. */
function pickEmail(value: unknown): string {
  if (!Array.isArray(value) || value.length === 0 || value.length > 20) throw invalidValue('emails must be a non-empty list');
  const entries = value as Array<{ value?: unknown; primary?: unknown; type?: unknown }>;
  const chosen =
    entries.find((e) => e?.primary === true || e?.primary === 'True' || e?.primary === 'true') ??
    entries.find((e) => e?.type === 'work') ??
    entries[0];
  return email(chosen?.value);
}
