import { Client } from 'pg';
import { apiClient, type Json } from '../support/api';
import { login, startTestHost, type TestHost } from '../support/host';
import { pollUntil } from '../support/poll';
import * as fx from './scim.fixtures';

const ERROR_SCHEMA = 'urn:ietf:params:scim:api:messages:2.0:Error';
const LIST_SCHEMA = 'urn:ietf:params:scim:api:messages:2.0:ListResponse';

/**
 * SCIM 2.0 provisioning as Okta and Entra ID do it, on real PostgreSQL: their recorded request
 * bodies (scim.fixtures.ts), the filters they send, ListResponse paging, SCIM errors, identity
 * groups as SCIM groups, deactivation ending the user's credentials, and the audit rows.
 */
describe('SCIM 2.0 provisioning', () => {
  let t: TestHost;
  let base: string;
  let pg: Client;
  let admin: string;
  let orgId: string;
  let scimToken: string;

  const { call, ok } = apiClient(() => base);
  const scim = async (method: string, path: string, body?: unknown, token: string | null = scimToken) => {
    const res = await fetch(`${base}/scim/v2${path}`, {
      method,
      headers: {
        ...(body === undefined ? {} : { 'content-type': 'application/scim+json' }),
        ...(token ? { authorization: `Bearer ${token}` } : {}),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: text ? (JSON.parse(text) as Json) : undefined, headers: res.headers };
  };
  const q = (filter: string, extra = ''): string => `?filter=${encodeURIComponent(filter)}${extra}`;
  const auditRows = async (action: string, targetId: string): Promise<Json[]> =>
    (await pg.query('SELECT * FROM audit.audit_event WHERE action = $1 AND target_id = $2 ORDER BY occurred_at', [action, targetId])).rows;

  beforeAll(async () => {
    t = await startTestHost('scim');
    base = t.host.url;
    pg = new Client({ connectionString: t.db.url });
    await pg.connect();
    const session = await login(base);
    admin = session.accessToken;
    orgId = session.orgId;
    scimToken = (await ok(call('POST', '/api-keys', admin, { name: 'Okta SCIM', scopes: ['manage_users'] }), 201)).key;
  });

  afterAll(async () => {
    await pg?.end();
    await t?.stop();
  });

  it('Okta: finds no user, creates one, finds it by userName, reads and replaces it', async () => {
    const none = await scim('GET', `/Users${q(fx.oktaUserFilter, '&startIndex=1&count=100')}`);
    expect(none.status).toBe(200);
    expect(none.headers.get('content-type')).toMatch(/^application\/scim\+json/);
    expect(none.body).toEqual({ schemas: [LIST_SCHEMA], totalResults: 0, startIndex: 1, itemsPerPage: 0, Resources: [] });

    const created = await scim('POST', '/Users', fx.oktaCreateUser);
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({
      schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'],
      userName: 'test.user@okta.local',
      externalId: '00ujl29u0le5T6Aj10h7',
      name: { givenName: 'Test', familyName: 'User' },
      displayName: 'Test User',
      emails: [{ value: 'test.user@okta.local', primary: true }],
      active: true,
      meta: { resourceType: 'User' },
    });
    const id = created.body.id as string;
    expect(created.headers.get('location')).toBe(created.body.meta.location);
    // The account is an ordinary member of the token's org, whose home is that org.
    const home = await pg.query('SELECT home_org_id FROM identity.user_account WHERE id = $1', [id]);
    expect(home.rows[0].home_org_id).toBe(orgId);
    expect((await call('GET', `/users/${id}`, admin)).body).toMatchObject({ email: 'test.user@okta.local', active: true });
    // The password Okta pushed is not the account's password.
    await expect(login(base, { email: 'test.user@okta.local', password: '1mz050nq' })).rejects.toThrow(/401/);

    const found = await scim('GET', `/Users${q(fx.oktaUserFilter)}`);
    expect(found.body).toMatchObject({ totalResults: 1, itemsPerPage: 1, Resources: [{ id }] });
    const byExternal = await scim('GET', `/Users${q('externalId eq "00ujl29u0le5T6Aj10h7"')}`);
    expect(byExternal.body.Resources.map((r: Json) => r.id)).toEqual([id]);
    expect((await scim('GET', `/Users/${id}`)).body).toMatchObject({ id, userName: 'test.user@okta.local' });

    const again = await scim('POST', '/Users', fx.oktaCreateUser);
    expect(again.status).toBe(409);
    expect(again.body).toMatchObject({ schemas: [ERROR_SCHEMA], status: '409', scimType: 'uniqueness' });

    const replaced = await scim('PUT', `/Users/${id}`, fx.oktaReplaceUser(id));
    expect(replaced.status).toBe(200);
    expect(replaced.body).toMatchObject({ name: { givenName: 'Another', familyName: 'User' }, displayName: 'Another User' });
    // The audit relay is asynchronous: wait for both rows.
    const scimAudit = await pollUntil(async () => {
      const rows = await auditRows('identity.scim.user.updated', id);
      return rows.length >= 2 ? rows : undefined;
    });
    expect(scimAudit.map((r) => [r.event.details.before?.givenName ?? null, r.event.details.after.givenName])).toEqual([
      [null, 'Test'],
      ['Test', 'Another'],
    ]);
    await pollUntil(async () => (await auditRows('identity.user.created', id)).length === 1);
  });

  it('deactivation (Okta PATCH) ends the sessions and API keys of the user at once', async () => {
    const created = await scim('POST', '/Users', {
      ...fx.oktaCreateUser,
      userName: 'leaver@okta.local',
      externalId: 'okta-leaver',
      emails: [{ primary: true, value: 'leaver@okta.local', type: 'work' }],
    });
    const id = created.body.id as string;
    // A password and an API key so the user has credentials to lose.
    await ok(call('PATCH', `/users/${id}`, admin, { password: 'a-long-enough-password' }));
    await ok(call('PATCH', `/orgs/${orgId}/members/${id}`, admin, { capabilities: ['api_access'] }));
    const session = await login(base, { email: 'leaver@okta.local', password: 'a-long-enough-password' });
    const key = (await ok(call('POST', '/api-keys', session.accessToken, { name: 'mine' }), 201)).key as string;
    expect((await call('GET', '/auth/me', session.accessToken)).status).toBe(200);
    expect((await call('GET', '/auth/me', key)).status).toBe(200);

    const patched = await scim('PATCH', `/Users/${id}`, fx.oktaDeactivateUser);
    expect(patched.status).toBe(200);
    expect(patched.body.active).toBe(false);
    // Revocation is effective at commit: the very first request after the answer is refused, with
    // no grace period (stronger than the 100 ms bound, and independent of the machine's load).
    expect((await call('GET', '/auth/me', session.accessToken)).status).toBe(401);
    expect((await call('GET', '/auth/me', key)).status).toBe(401);
    expect((await call('POST', '/auth/refresh', undefined, { refreshToken: session.refreshToken })).status).toBe(401);
    const live = await pg.query('SELECT count(*)::int AS n FROM identity.session WHERE user_id = $1 AND revoked_at IS NULL', [id]);
    expect(live.rows[0].n).toBe(0);
    const updated = await pollUntil(async () =>
      (await auditRows('identity.user.updated', id)).find((r) => r.event.details.after.active === false),
    );
    expect(updated.event.details).toMatchObject({ before: { active: true }, after: { active: false }, revokedSessions: 1 });

    // DELETE deactivates too; the account stays, inactive, visible to the IdP.
    const reactivated = await scim('PATCH', `/Users/${id}`, {
      schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'],
      Operations: [{ op: 'Replace', path: 'active', value: 'True' }],
    });
    expect(reactivated.body.active).toBe(true);
    expect((await scim('DELETE', `/Users/${id}`)).status).toBe(204);
    expect((await scim('GET', `/Users/${id}`)).body.active).toBe(false);
  });

  it('Entra ID: creates with the enterprise schema, patches email and name, keeps quiet about attributes it does not keep, disables', async () => {
    const created = await scim('POST', '/Users', fx.entraCreateUser);
    expect(created.status).toBe(201);
    const id = created.body.id as string;
    expect(created.body).toMatchObject({
      userName: 'test_user_ab6490ee-1e48-479e-a20b-2d77186b5dd1',
      emails: [{ value: 'test_user_fd0ea19b-0777-472c-9f96-4f70d2226f2e@testuser.com' }],
      name: { givenName: 'givenName', familyName: 'familyName' },
    });
    const found = await scim('GET', `/Users${q(fx.entraUserFilter)}`);
    expect(found.body.Resources.map((r: Json) => r.id)).toEqual([id]);

    const updated = await scim('PATCH', `/Users/${id}`, fx.entraUpdateUser);
    expect(updated.status).toBe(200);
    expect(updated.body).toMatchObject({ emails: [{ value: 'updatedemail@microsoft.com' }], name: { familyName: 'updatedFamilyName' } });
    expect((await call('GET', `/users/${id}`, admin)).body.email).toBe('updatedemail@microsoft.com');
    const unkept = await scim('PATCH', `/Users/${id}`, fx.entraUpdateUnkeptAttributes);
    expect(unkept.status).toBe(200);
    expect(unkept.body.displayName).toBe('Updated Name');
    expect(unkept.body.title).toBeUndefined();

    expect((await scim('PATCH', `/Users/${id}`, fx.entraDisableUserString)).body.active).toBe(false);
    const disabled = await scim('GET', `/Users${q(fx.entraUserFilter)}`);
    expect(disabled.body.Resources[0].active).toBe(false);
    expect((await scim('PATCH', `/Users/${id}`, fx.entraDisableUser)).body.active).toBe(false);
  });

  it('groups are identity groups: Okta and Entra ID create, rename, add and remove members', async () => {
    const user = (await scim('GET', `/Users${q(fx.oktaUserFilter)}`)).body.Resources[0].id as string;

    const okta = await scim('POST', '/Groups', fx.oktaCreateGroup);
    expect(okta.status).toBe(201);
    const gid = okta.body.id as string;
    expect(okta.body).toMatchObject({ displayName: 'Test SCIMv2', members: [] });
    expect((await scim('PATCH', `/Groups/${gid}`, fx.oktaRenameGroup(gid))).body.displayName).toBe('Test SCIMv2 renamed');
    expect((await scim('PATCH', `/Groups/${gid}`, fx.oktaAddMembers(user))).body.members).toEqual([
      expect.objectContaining({ value: user }),
    ]);
    const members = await call('GET', `/groups/${gid}/members`, admin);
    expect(members.body.items.map((m: Json) => m.userId)).toEqual([user]);
    await pollUntil(async () => (await auditRows('identity.group.member_added', gid)).length === 1);
    expect((await scim('PATCH', `/Groups/${gid}`, fx.oktaRemoveMember(user))).body.members).toEqual([]);
    expect((await call('GET', `/groups/${gid}/members`, admin)).body.items).toEqual([]);

    const entra = await scim('POST', '/Groups', fx.entraCreateGroup);
    expect(entra.status).toBe(201);
    const eid = entra.body.id as string;
    const found = await scim('GET', `/Groups${q(fx.entraGroupFilter, '&excludedAttributes=members')}`);
    expect(found.body).toMatchObject({ totalResults: 1, Resources: [{ id: eid, externalId: fx.entraCreateGroup.externalId }] });
    expect(found.body.Resources[0].members).toBeUndefined();
    expect((await scim('PATCH', `/Groups/${eid}`, fx.entraAddMember(user))).status).toBe(200);
    const snapshot = await call('GET', '/auth/me', admin);
    expect(snapshot.status).toBe(200);
    expect((await scim('GET', `/Groups/${eid}`)).body.members.map((m: Json) => m.value)).toEqual([user]);
    expect((await scim('PATCH', `/Groups/${eid}`, fx.entraRemoveMember(user))).body.members).toEqual([]);
    const renamed = await scim('PATCH', `/Groups/${eid}`, fx.entraUpdateGroupName);
    expect(renamed.body.displayName).toBe('1879db59-3bdf-4490-ad68-ab880a269474updatedDisplayName');

    // A member must be a user of this org.
    const stranger = await scim('PATCH', `/Groups/${eid}`, fx.entraAddMember('00000000-0000-4000-8000-000000000000'));
    expect(stranger).toMatchObject({ status: 400, body: { scimType: 'invalidValue' } });
    expect((await scim('DELETE', `/Groups/${eid}`)).status).toBe(204);
    expect((await scim('GET', `/Groups/${eid}`)).status).toBe(404);
  });

  it('does not move the login email of a user who holds capabilities the SCIM key does not', async () => {
    const created = await scim('POST', '/Users', {
      ...fx.oktaCreateUser,
      userName: 'auditor@okta.local',
      externalId: 'okta-auditor',
      emails: [{ primary: true, value: 'auditor@okta.local', type: 'work' }],
    });
    const id = created.body.id as string;
    await ok(call('PATCH', `/orgs/${orgId}/members/${id}`, admin, { capabilities: ['view_audit'] }));
    const moved = await scim('PATCH', `/Users/${id}`, {
      ...fx.entraUpdateUser,
      Operations: [{ op: 'Replace', path: 'emails[type eq "work"].value', value: 'attacker@evil.example' }],
    });
    expect(moved).toMatchObject({ status: 403, body: { schemas: [ERROR_SCHEMA], status: '403' } });
    expect((await call('GET', `/users/${id}`, admin)).body.email).toBe('auditor@okta.local');
    // Its name may still change.
    expect((await scim('PATCH', `/Users/${id}`, fx.entraUpdateUnkeptAttributes)).status).toBe(200);
  });

  it('pages with startIndex and count', async () => {
    const all = await scim('GET', '/Users');
    expect(all.body.totalResults).toBeGreaterThanOrEqual(4);
    const second = await scim('GET', '/Users?startIndex=2&count=1');
    expect(second.body).toMatchObject({ startIndex: 2, itemsPerPage: 1, totalResults: all.body.totalResults });
    expect(second.body.Resources[0].id).toBe(all.body.Resources[1].id);
  });

  it.each([
    ['no credential', 'GET', '/Users', undefined, 401, undefined, 'none'],
    ['an unsupported filter', 'GET', `/Users${'?filter=' + encodeURIComponent('title co "x"')}`, undefined, 400, 'invalidFilter', 'scim'],
    [
      'a filter that is not eq',
      'GET',
      `/Users${'?filter=' + encodeURIComponent('userName sw "a"')}`,
      undefined,
      400,
      'invalidFilter',
      'scim',
    ],
    ['a user without schemas', 'POST', '/Users', { userName: 'x@y.z' }, 400, 'invalidSyntax', 'scim'],
    ['a user without userName', 'POST', '/Users', { schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'] }, 400, 'invalidValue', 'scim'],
    ['an unknown id', 'GET', '/Users/00000000-0000-4000-8000-000000000000', undefined, 404, undefined, 'scim'],
    ['a malformed id', 'GET', '/Users/not-an-id', undefined, 404, undefined, 'scim'],
    [
      'a PATCH without the PatchOp schema',
      'PATCH',
      '/Groups/00000000-0000-4000-8000-000000000000',
      { Operations: [] },
      400,
      'invalidSyntax',
      'scim',
    ],
  ])('answers %s with a SCIM error', async (_what, method, path, body, status, scimType, who) => {
    const res = await scim(method, path, body, who === 'none' ? null : scimToken);
    expect(res.status).toBe(status);
    expect(res.headers.get('content-type')).toMatch(/^application\/scim\+json/);
    expect(res.body).toMatchObject({ schemas: [ERROR_SCHEMA], status: String(status), ...(scimType ? { scimType } : {}) });
  });

  it('refuses an unknown attribute path and a credential without manage_users', async () => {
    const id = (await scim('GET', `/Users${q(fx.oktaUserFilter)}`)).body.Resources[0].id as string;
    const bad = await scim('PATCH', `/Users/${id}`, {
      schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'],
      Operations: [{ op: 'replace', path: 'isAdmin', value: true }],
    });
    expect(bad).toMatchObject({ status: 400, body: { scimType: 'invalidPath' } });
    const weak = (await ok(call('POST', '/api-keys', admin, { name: 'weak', scopes: ['api_access'] }), 201)).key as string;
    const refused = await scim('GET', '/Users', undefined, weak);
    expect(refused).toMatchObject({ status: 403, body: { schemas: [ERROR_SCHEMA], status: '403' } });
  });

  it('an address that already has an account is a uniqueness conflict, never a second account', async () => {
    const taken = await scim('POST', '/Users', { ...fx.oktaCreateUser, userName: 'admin@test.local', externalId: 'x', emails: undefined });
    expect(taken).toMatchObject({ status: 409, body: { scimType: 'uniqueness' } });
    const accounts = await pg.query("SELECT count(*)::int AS n FROM identity.user_account WHERE email = 'admin@test.local'");
    expect(accounts.rows[0].n).toBe(1);
  });
});
