import type { PermissionSet } from '@custodian/policy';
import type { EntityManager } from 'typeorm';
import { ApiKeyEntity } from '../entities/api-key.entity';
import { MembershipEntity } from '../entities/membership.entity';
import { OrganizationEntity } from '../entities/organization.entity';
import { SessionEntity } from '../entities/session.entity';
import { UserEntity } from '../entities/user.entity';
import type { IdentityEvents } from '../events/identity-events.service';
import { MEMBERSHIP_SET_NAME, PrincipalSnapshotService } from './principal-snapshot.service';

// The snapshot's steps (docs/identity.md, "The principal snapshot") over a strict in-memory data
// source: each step's rows are given, and a statement no step should make fails the test.

const ORG = '00000000-0000-4000-8000-00000000000a';
const USER = '00000000-0000-4000-8000-000000000001';
const ROLE = '00000000-0000-4000-8000-000000000002';
const SESSION = '00000000-0000-4000-8000-000000000003';
const KEY = '00000000-0000-4000-8000-000000000004';
const hour = (n: number): Date => new Date(Date.now() + n * 3_600_000);

interface World {
  user?: Partial<UserEntity>;
  membership?: Partial<MembershipEntity>;
  org?: Partial<OrganizationEntity>;
  session?: Partial<SessionEntity>;
  key?: Partial<ApiKeyEntity>;
  ancestors?: string[];
  groups?: string[];
  sets?: PermissionSet[];
}

function world(over: World = {}) {
  const w: Required<Pick<World, 'ancestors' | 'groups' | 'sets'>> & World = {
    user: { id: USER, email: 'rep@test.local', active: true },
    membership: { userId: USER, orgId: ORG, roleId: ROLE, capabilities: [] },
    org: { id: ORG, policyVersion: 7 },
    ancestors: ['parent-role', 'grandparent-role'],
    groups: ['group-a'],
    sets: [{ name: 'Sales', objects: { account: { allowRead: true } }, systemCapabilities: ['view_audit'] } as PermissionSet],
    ...over,
  };
  const statements: string[] = [];
  const m = {
    findOne: jest.fn((entity: unknown, opts: { where: Record<string, unknown> }) => {
      if (entity === UserEntity) return Promise.resolve(w.user?.id === opts.where.id ? w.user : null);
      if (entity === MembershipEntity) return Promise.resolve(w.membership ?? null);
      if (entity === OrganizationEntity) return Promise.resolve(w.org ?? null);
      if (entity === SessionEntity) return Promise.resolve(w.session?.id === opts.where.id ? w.session : null);
      if (entity === ApiKeyEntity) return Promise.resolve(w.key?.id === opts.where.id ? w.key : null);
      throw new Error(`unexpected findOne of ${String(entity)}`);
    }),
    query: jest.fn((sql: string) => {
      statements.push(sql);
      if (sql.includes('FROM role_closure')) return Promise.resolve(w.ancestors.map((ancestor_id) => ({ ancestor_id })));
      if (sql.includes('FROM group_member WHERE')) return Promise.resolve(w.groups.map((group_id) => ({ group_id })));
      if (sql.includes('FROM permission_set ps')) return Promise.resolve(w.sets.map((body) => ({ body })));
      throw new Error(`unexpected statement: ${sql}`);
    }),
  };
  const events = { read: <T>(fn: (em: EntityManager) => Promise<T>) => fn(m as unknown as EntityManager) };
  return { service: new PrincipalSnapshotService(events as unknown as IdentityEvents), statements, m };
}

const rejectsUnauthenticated = (p: Promise<unknown>) => expect(p).rejects.toMatchObject({ code: 'unauthenticated' });

describe('PrincipalSnapshotService.build', () => {
  it('loadActivePrincipal, checkSession, the role ancestors, groups and sets: a session snapshot', async () => {
    const expires = hour(1);
    const { service } = world({ session: { id: SESSION, userId: USER, orgId: ORG, revokedAt: null, expiresAt: expires } });
    const snapshot = await service.build({ userId: USER, orgId: ORG, sessionId: SESSION });
    expect(snapshot).toEqual({
      userId: USER,
      orgId: ORG,
      email: 'rep@test.local',
      sessionId: SESSION,
      capabilities: ['view_audit'],
      roleId: ROLE,
      ancestorRoleIds: ['parent-role', 'grandparent-role'],
      groupIds: ['group-a'],
      policyVersion: 7,
      permissionSets: [{ name: 'Sales', objects: { account: { allowRead: true } }, systemCapabilities: ['view_audit'] }],
      credentialExpiresAt: expires.toISOString(),
    });
  });

  it('withMembershipSet: direct membership capabilities travel as one synthetic set after the assigned ones', async () => {
    const { service } = world({ membership: { userId: USER, orgId: ORG, roleId: ROLE, capabilities: ['manage_users', 'api_access'] } });
    const snapshot = await service.build({ userId: USER, orgId: ORG });
    expect(snapshot.permissionSets.map((s) => s.name)).toEqual(['Sales', MEMBERSHIP_SET_NAME]);
    expect(snapshot.permissionSets[1]).toEqual({
      name: MEMBERSHIP_SET_NAME,
      systemCapabilities: ['manage_users'],
      integrationCapabilities: ['api_access'],
    });
    expect(snapshot.capabilities).toEqual(['api_access', 'manage_users', 'view_audit']);
  });

  it('loadAncestorRoleIds: no role, no ancestors and no role-closure statement', async () => {
    const { service, statements } = world({ membership: { userId: USER, orgId: ORG, roleId: null, capabilities: [] } });
    const snapshot = await service.build({ userId: USER, orgId: ORG });
    expect([snapshot.roleId, snapshot.ancestorRoleIds]).toEqual([null, []]);
    expect(statements.some((s) => s.includes('role_closure'))).toBe(false);
  });

  it('loadActivePrincipal refuses an inactive or unknown user, a missing membership, an unknown org (401)', async () => {
    await rejectsUnauthenticated(world({ user: { id: USER, email: 'x', active: false } }).service.build({ userId: USER, orgId: ORG }));
    await rejectsUnauthenticated(world().service.build({ userId: '00000000-0000-4000-8000-0000000000ff', orgId: ORG }));
    await rejectsUnauthenticated(world({ membership: undefined }).service.build({ userId: USER, orgId: ORG }));
    await rejectsUnauthenticated(world({ org: undefined }).service.build({ userId: USER, orgId: ORG }));
  });

  it("checkSession refuses a revoked, expired, another user's or another org's session (401)", async () => {
    const valid = { id: SESSION, userId: USER, orgId: ORG, revokedAt: null, expiresAt: hour(1) };
    for (const session of [
      { ...valid, revokedAt: new Date() },
      { ...valid, expiresAt: hour(-1) },
      { ...valid, userId: '00000000-0000-4000-8000-0000000000ff' },
      { ...valid, orgId: '00000000-0000-4000-8000-0000000000ff' },
    ]) {
      await rejectsUnauthenticated(world({ session }).service.build({ userId: USER, orgId: ORG, sessionId: SESSION }));
    }
    await rejectsUnauthenticated(world().service.build({ userId: USER, orgId: ORG, sessionId: SESSION }));
  });

  it('checkApiKey + narrowForCredential: a key carries exactly its scopes and its own expiry; a revoked one is 401', async () => {
    const key = { id: KEY, userId: USER, orgId: ORG, revokedAt: null, expiresAt: hour(2), scopes: ['api_access'] };
    const { service } = world({
      key,
      membership: { userId: USER, orgId: ORG, roleId: ROLE, capabilities: ['manage_users', 'api_access'] },
    });
    const snapshot = await service.build({ userId: USER, orgId: ORG, apiKeyId: KEY });
    expect(snapshot.capabilities).toEqual(['api_access']);
    expect(snapshot.apiKeyScopes).toEqual(['api_access']);
    expect(snapshot.credentialExpiresAt).toBe(key.expiresAt.toISOString());
    // An empty scope list carries nothing (never "no narrowing").
    const empty = await world({ key: { ...key, scopes: [] } }).service.build({ userId: USER, orgId: ORG, apiKeyId: KEY });
    expect(empty.capabilities).toEqual([]);
    await rejectsUnauthenticated(
      world({ key: { ...key, revokedAt: new Date() } }).service.build({ userId: USER, orgId: ORG, apiKeyId: KEY }),
    );
    await rejectsUnauthenticated(
      world({ key: { ...key, expiresAt: hour(-1) } }).service.build({ userId: USER, orgId: ORG, apiKeyId: KEY }),
    );
  });

  it('narrowForCredential for an agent: only what its scopes carry, never an administrative capability; unknown scopes dropped', async () => {
    const { service } = world({
      sets: [
        {
          name: 'Admin',
          systemCapabilities: ['manage_users', 'view_all_data', 'modify_all_data'],
          integrationCapabilities: ['api_access'],
        } as PermissionSet,
      ],
    });
    const snapshot = await service.build({
      userId: USER,
      orgId: ORG,
      delegation: { clientId: 'copilot', name: 'Copilot', scopes: ['data:read', 'made:up'] },
    });
    expect(snapshot.capabilities).toEqual(['api_access', 'view_all_data']);
    expect(snapshot.agent).toEqual({ clientId: 'copilot', name: 'Copilot', scopes: ['data:read'] });
  });
});
