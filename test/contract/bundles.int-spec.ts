import { randomBytes } from 'node:crypto';
import { ApplyApprovalPolicies, ApplyIdentityBundle, type RequestOf } from '@custodian/contracts';
import { NatsBus } from '@custodian/platform';
import { apiClient, type Json } from '../support/api';
import { login, startTestHost, type TestHost } from '../support/host';

const PASSWORD = 'a-long-enough-password';

/**
 * The bundle contracts (identity.bundle.apply, approvals.policies.apply) on the in-process bus and
 * on NATS: dry-run writes nothing, apply is idempotent by name, and the receiving service rebuilds
 * the actor's principal itself — a user without the capability, or a revoked session, is refused.
 */
describe.each([
  ['in-process', {} as Record<string, string>],
  ['nats', { NATS_URL: process.env.NATS_URL ?? 'nats://127.0.0.1:4222', CUSTODIAN_BUS_NAMESPACE: `t${randomBytes(5).toString('hex')}` }],
])('bundle contracts over the %s bus', (name, env) => {
  let t: TestHost;
  let base: string;
  let orgId: string;
  let admin: { userId: string; sessionId: string };
  let plain: { userId: string };
  const { call, ok } = apiClient(() => base);

  const identity = (payload: Partial<RequestOf<typeof ApplyIdentityBundle>>): Promise<Json> =>
    t.host.bus.request(
      ApplyIdentityBundle,
      { orgId, actor: admin, roles: [], groups: [], permissionSets: [], dryRun: false, ...payload },
      { timeoutMs: 10_000 },
    );
  const approvals = (payload: Partial<RequestOf<typeof ApplyApprovalPolicies>>): Promise<Json> =>
    t.host.bus.request(ApplyApprovalPolicies, { orgId, actor: admin, policies: [], dryRun: false, ...payload }, { timeoutMs: 10_000 });
  const refusal = (p: Promise<unknown>): Promise<Json> =>
    p.then(
      () => ({ code: 'none' }),
      (error: Json) => ({ code: error.code, details: error.details }),
    );

  beforeAll(async () => {
    t = await startTestHost(`bundlebus_${name.replace('-', '')}`, env);
    base = t.host.url;
    const session = await login(base);
    orgId = session.orgId;
    const me = await ok(call('GET', '/auth/me', session.accessToken));
    admin = { userId: me.userId, sessionId: me.sessionId };
    const u = await ok(
      call('POST', '/users', session.accessToken, { email: 'plain@test.local', displayName: 'Plain', password: PASSWORD }),
      201,
    );
    plain = { userId: u.id };
  }, 60_000);

  afterAll(async () => {
    if (t?.host.bus instanceof NatsBus) await t.host.bus.deleteStream().catch(() => undefined);
    await t?.stop();
  });

  it('identity: dry-run diffs and writes nothing; apply creates parent-first; again is unchanged', async () => {
    const bundle = {
      roles: [{ name: 'child', parent: 'top' }, { name: 'top' }],
      groups: [{ name: 'team', description: 'A team' }],
      permissionSets: [{ name: 'Readers', objects: { thing: { allowRead: true } } }],
    };
    const dry = await identity({ ...bundle, dryRun: true });
    expect(dry.changes.map((c: Json) => `${c.kind}:${c.name}:${c.change}`)).toEqual([
      'role:top:create',
      'role:child:create',
      'group:team:create',
      'permission_set:Readers:create',
    ]);
    expect(Object.keys(dry.roleIds).sort()).toEqual(['child', 'top']);
    const token = (await login(base)).accessToken;
    expect((await ok(call('GET', '/roles', token))).items).toEqual([]);

    const applied = await identity(bundle);
    const roles = (await ok(call('GET', '/roles', token))).items;
    expect(roles.find((r: Json) => r.name === 'child').parentId).toBe(applied.roleIds.top);
    expect(applied.groupIds.team).toBe((await ok(call('GET', '/groups', token))).items[0].id);
    const again = await identity(bundle);
    expect(again.changes.every((c: Json) => c.change === 'unchanged')).toBe(true);
    expect(again.roleIds).toEqual(applied.roleIds);
  });

  it('identity re-checks the actor: missing capability, revoked session, cycle', async () => {
    const denied = await refusal(identity({ actor: plain, roles: [{ name: 'nope' }], permissionSets: [{ name: 'Nope' }] }));
    expect(denied).toEqual({ code: 'forbidden', details: { missing: ['manage_roles', 'manage_permissions'] } });
    // empty sections need nothing: the answer is the org's role and group ids (grantee names)
    expect(Object.keys((await identity({ actor: plain })).roleIds).sort()).toEqual(['child', 'top']);
    const cycle = await refusal(
      identity({
        roles: [
          { name: 'a', parent: 'b' },
          { name: 'b', parent: 'a' },
        ],
      }),
    );
    expect(cycle.code).toBe('validation_failed');
    const session = await login(base);
    const me = await ok(call('GET', '/auth/me', session.accessToken));
    await ok(call('POST', '/auth/logout', session.accessToken), 204);
    const revoked = await refusal(identity({ actor: { userId: me.userId, sessionId: me.sessionId }, roles: [{ name: 'late' }] }));
    expect(revoked.code).toBe('unauthenticated');
    const token = (await login(base)).accessToken;
    expect((await ok(call('GET', '/roles', token))).items.map((r: Json) => r.name).sort()).toEqual(['child', 'top']);
  });

  it('approvals: dry-run, apply with defaults, idempotent, update; refuses without manage_metadata', async () => {
    const policies = [{ name: 'Deletes', operations: ['delete' as const] }];
    const dry = await approvals({ policies, dryRun: true });
    expect(dry.changes).toEqual([
      expect.objectContaining({
        kind: 'approval_policy',
        name: 'Deletes',
        change: 'create',
        after: {
          name: 'Deletes',
          operations: ['delete'],
          approverCapability: 'approve_actions',
          minApprovals: 1,
          separationOfDuties: true,
        },
      }),
    ]);
    const token = (await login(base)).accessToken;
    expect((await ok(call('GET', '/approvals/policies', token))).items).toEqual([]);
    expect((await approvals({ policies })).changes[0].change).toBe('create');
    expect((await approvals({ policies })).changes[0].change).toBe('unchanged');
    const updated = await approvals({ policies: [{ ...policies[0], minApprovals: 2 }] });
    expect([updated.changes[0].change, updated.changes[0].before.minApprovals, updated.changes[0].after.minApprovals]).toEqual([
      'update',
      1,
      2,
    ]);
    expect(await refusal(approvals({ actor: plain, policies }))).toEqual({ code: 'forbidden', details: { missing: ['manage_metadata'] } });
    const bad = await refusal(approvals({ policies: [{ name: 'x', operations: ['delete'], minApprovals: 9 }] }));
    expect(bad.code).toBe('invalid_message');
    expect((await ok(call('GET', '/approvals/policies', token))).items.map((p: Json) => [p.name, p.minApprovals])).toEqual([
      ['Deletes', 2],
    ]);
  });
});
