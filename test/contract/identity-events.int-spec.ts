import { randomBytes, randomUUID } from 'node:crypto';
import {
  AuthenticateApiKey,
  CredentialRevoked,
  DirectoryChanged,
  ErrorCode,
  GetPrincipalSnapshot,
  PolicyVersionChanged,
  policySnapshot,
  type DirectoryChangedEvent,
  type PrincipalSnapshot,
} from '@custodian/contracts';
import { CustodianException, type Bus } from '@custodian/platform';
import { parsePrincipalSnapshot } from '@custodian/policy';
import { pollUntil } from '../support/poll';
import { inProcessTransport, natsTransport, type Transport } from '../support/transports';

/** Identity's bus contracts (snapshot, API key, directory, revocation, policy version) on both transports. */

const snapshot = (over: Partial<PrincipalSnapshot> = {}): PrincipalSnapshot => ({
  userId: randomUUID(),
  orgId: randomUUID(),
  email: 'a@b.c',
  sessionId: randomUUID(),
  capabilities: ['agent_access', 'view_audit'],
  roleId: randomUUID(),
  ancestorRoleIds: [randomUUID(), randomUUID()],
  groupIds: [randomUUID()],
  policyVersion: 7,
  permissionSets: [
    { name: 'Sales', objects: { account: { allowRead: true, allowEdit: true } }, fields: { account: { '*': 'read', revenue: 'none' } } },
    { name: 'membership:capabilities', systemCapabilities: ['view_audit'], integrationCapabilities: ['agent_access'] },
  ],
  agent: { clientId: 'claude-desktop', name: 'Claude', scopes: ['data:read'] },
  ...over,
});

describe.each([
  ['in-process', inProcessTransport],
  ['nats', () => natsTransport('identity-contract')],
])('identity contracts on %s', (_name, makeTransport) => {
  let transport: Transport;
  let identity: Bus;
  let caller: Bus;
  let answer: PrincipalSnapshot;

  beforeAll(async () => {
    transport = makeTransport();
    identity = await transport.open();
    caller = await transport.open();
    await identity.handle(GetPrincipalSnapshot, async (req) => {
      if (req.sessionId === '00000000-0000-4000-8000-000000000000') throw CustodianException.unauthenticated('Session is no longer valid');
      return answer;
    });
    await identity.handle(AuthenticateApiKey, async (req) => {
      if (!req.key.startsWith('cak_good')) throw CustodianException.unauthenticated('Invalid API key');
      return { ...answer, apiKeyId: randomUUID(), apiKeyScopes: ['manage_users'] };
    });
  });

  afterAll(async () => {
    await transport.close();
  });

  it('carries the extended snapshot, which the policy library accepts as is', async () => {
    answer = snapshot();
    const got = await caller.request(GetPrincipalSnapshot, {
      userId: answer.userId,
      orgId: answer.orgId,
      sessionId: answer.sessionId,
      delegation: { clientId: 'claude-desktop', name: 'Claude', scopes: ['data:read'] },
    });
    expect(got).toEqual(answer);
    expect(parsePrincipalSnapshot(policySnapshot(got))).toEqual(policySnapshot(got));
  });

  it('refuses a snapshot whose permission set breaks the policy schema (nothing trusts the wire)', async () => {
    answer = snapshot({ permissionSets: [{ name: 'x', objects: { account: { allowEverything: true } } } as never] });
    await expect(caller.request(GetPrincipalSnapshot, { userId: answer.userId, orgId: answer.orgId })).rejects.toMatchObject({
      code: ErrorCode.InvalidMessage,
    });
  });

  it('passes refusals through as unauthenticated', async () => {
    answer = snapshot();
    await expect(
      caller.request(GetPrincipalSnapshot, {
        userId: answer.userId,
        orgId: answer.orgId,
        sessionId: '00000000-0000-4000-8000-000000000000',
      }),
    ).rejects.toMatchObject({ code: ErrorCode.Unauthenticated });
    await expect(caller.request(AuthenticateApiKey, { key: 'cak_bad' })).rejects.toMatchObject({ code: ErrorCode.Unauthenticated });
    await expect(caller.request(AuthenticateApiKey, { key: 'cak_good' })).resolves.toMatchObject({ apiKeyScopes: ['manage_users'] });
    await expect(caller.request(AuthenticateApiKey, { key: 'x'.repeat(300) })).rejects.toMatchObject({ code: ErrorCode.InvalidMessage });
  });

  it('delivers directory, revocation and policy-version events in order, and refuses malformed ones', async () => {
    const orgId = randomUUID();
    const seen: DirectoryChangedEvent[] = [];
    const revoked: string[] = [];
    const versions: number[] = [];
    await caller.subscribe(DirectoryChanged, `dir-${randomBytes(3).toString('hex')}`, async (e) => {
      if (e.orgId === orgId) seen.push(e);
    });
    await caller.subscribe(CredentialRevoked, `rev-${randomBytes(3).toString('hex')}`, async (e) => {
      if (e.orgId === orgId) revoked.push(...e.ids);
    });
    await caller.subscribe(PolicyVersionChanged, `pv-${randomBytes(3).toString('hex')}`, async (e) => {
      if (e.orgId === orgId) versions.push(e.policyVersion);
    });
    const userId = randomUUID();
    const roleId = randomUUID();
    const changes = [
      { kind: 'role_upserted' as const, roleId, parentId: null },
      { kind: 'user_role' as const, userId, roleId },
      { kind: 'group_member_added' as const, groupId: roleId, userId },
      { kind: 'member_removed' as const, userId },
    ];
    for (const [i, change] of changes.entries()) {
      const eventId = randomUUID();
      await identity.publish(DirectoryChanged, { eventId, orgId, seq: i + 1, policyVersion: i + 2, change }, { messageId: eventId });
      await identity.publish(PolicyVersionChanged, { orgId, policyVersion: i + 2, reason: 'test' }, { messageId: randomUUID() });
    }
    const sessionId = randomUUID();
    await identity.publish(
      CredentialRevoked,
      { eventId: sessionId, orgId, kind: 'session', ids: [sessionId], reason: 'logout' },
      { messageId: sessionId },
    );
    await pollUntil(() => seen.length === changes.length && revoked.length === 1 && versions.length === changes.length, { what: 'events' });
    expect(seen.map((e) => e.seq)).toEqual([1, 2, 3, 4]);
    expect(seen.map((e) => e.change)).toEqual(changes);
    expect(revoked).toEqual([sessionId]);
    expect(versions).toEqual([2, 3, 4, 5]);

    const bad = [
      () =>
        identity.publish(
          DirectoryChanged,
          { eventId: randomUUID(), orgId, seq: 0, policyVersion: 1, change: { kind: 'member_removed', userId } },
          { messageId: randomUUID() },
        ),
      () =>
        identity.publish(
          DirectoryChanged,
          { eventId: randomUUID(), orgId, seq: 1, policyVersion: 1, change: { kind: 'nuke' } as never },
          { messageId: randomUUID() },
        ),
      () =>
        identity.publish(
          CredentialRevoked,
          { eventId: randomUUID(), orgId, kind: 'session', ids: [], reason: 'x' },
          { messageId: randomUUID() },
        ),
    ];
    for (const publish of bad) await expect(publish()).rejects.toMatchObject({ code: ErrorCode.InvalidMessage });
  });
});
