import { CredentialRevoked, PolicyVersionChanged, type PrincipalSnapshot } from '@custodian/contracts';
import type { Bus, ListenOptions } from '@custodian/platform';
import { DelegatedPrincipals, type DelegationRequest } from './delegated-principals';

const ORG = '0190f0f0-0000-7000-8000-000000000001';
const USER = '0190f0f0-0000-7000-8000-000000000002';
const SESSION = '0190f0f0-0000-7000-8000-000000000003';

/** A bus answering GetPrincipalSnapshot from `version` and recording what it was asked. */
function fakeBus() {
  const listeners = new Map<string, { handler: (e: unknown) => void; opts?: ListenOptions }>();
  const state = { version: 1, asked: 0, ready: true, expiresAt: undefined as string | undefined };
  const bus = {
    kind: 'in-process',
    isReady: () => state.ready,
    async listen(contract: { subject: string }, handler: (e: unknown) => void, opts?: ListenOptions) {
      listeners.set(contract.subject, { handler, opts });
    },
    async request(_contract: unknown, payload: { userId: string; orgId: string; sessionId?: string; delegation: { scopes: string[] } }) {
      state.asked++;
      return {
        userId: payload.userId,
        orgId: payload.orgId,
        sessionId: payload.sessionId,
        policyVersion: state.version,
        capabilities: ['agent_access'],
        agent: { clientId: 'custodian-agent:x', name: 'x', scopes: payload.delegation.scopes },
        ...(state.expiresAt ? { credentialExpiresAt: state.expiresAt } : {}),
      } as unknown as PrincipalSnapshot;
    },
  } as unknown as Bus;
  const broadcast = (subject: string, event: unknown): void => listeners.get(subject)!.handler(event);
  const gap = (subject: string): void => listeners.get(subject)!.opts!.onGap!();
  return { bus, state, broadcast, gap };
}

const request = (scopes = ['data:read']): DelegationRequest => ({
  orgId: ORG,
  userId: USER,
  sessionId: SESSION,
  apiKeyId: null,
  delegation: { clientId: 'custodian-agent:x', name: 'x', scopes },
});

describe('DelegatedPrincipals (the runtime’s cache of user ∩ agent principals, same rules as the HTTP edge, R10)', () => {
  it('reuses a snapshot for the same user, credential and delegation; another delegation is asked for', async () => {
    const { bus, state } = fakeBus();
    const cache = new DelegatedPrincipals(bus, 5000);
    await cache.start();
    await cache.get(request());
    await cache.get(request());
    expect(state.asked).toBe(1);
    await cache.get(request(['data:read', 'data:write']));
    expect(state.asked).toBe(2);
  });

  it('a revocation of the session or the user drops it at once', async () => {
    const { bus, state, broadcast } = fakeBus();
    const cache = new DelegatedPrincipals(bus, 60_000);
    await cache.start();
    await cache.get(request());
    broadcast(CredentialRevoked.subject, { eventId: SESSION, orgId: ORG, kind: 'session', ids: [SESSION], reason: 'logout' });
    await cache.get(request());
    expect(state.asked).toBe(2);
    broadcast(CredentialRevoked.subject, { eventId: SESSION, orgId: ORG, kind: 'user', ids: [USER], reason: 'deactivated' });
    await cache.get(request());
    expect(state.asked).toBe(3);
  });

  it('a policy-version broadcast drops older snapshots, and an older answer is never kept', async () => {
    const { bus, state, broadcast } = fakeBus();
    const cache = new DelegatedPrincipals(bus, 60_000);
    await cache.start();
    await cache.get(request());
    broadcast(PolicyVersionChanged.subject, { orgId: ORG, policyVersion: 2, reason: 'permission_set' });
    // Identity still answers version 1 (a lagging replica): used, but not cached.
    expect((await cache.get(request())).policyVersion).toBe(1);
    await cache.get(request());
    expect(state.asked).toBe(3);
    state.version = 2;
    await cache.get(request());
    await cache.get(request());
    expect(state.asked).toBe(4);
  });

  it('a bus gap empties it, a bus that is not ready is never served from it, and TTL 0 turns it off', async () => {
    const { bus, state, gap } = fakeBus();
    const cache = new DelegatedPrincipals(bus, 60_000);
    await cache.start();
    await cache.get(request());
    gap(CredentialRevoked.subject);
    await cache.get(request());
    expect(state.asked).toBe(2);
    state.ready = false;
    await cache.get(request());
    expect(state.asked).toBe(3);
    const off = new DelegatedPrincipals(fakeBus().bus, 0);
    await off.start();
    expect(off.size()).toBe(0);
    await off.get(request());
    expect(off.size()).toBe(0);
  });

  it('never past the credential’s own expiry', async () => {
    const { bus, state } = fakeBus();
    state.expiresAt = new Date(Date.now() - 1000).toISOString();
    const cache = new DelegatedPrincipals(bus, 60_000);
    await cache.start();
    await cache.get(request());
    await cache.get(request());
    expect(state.asked).toBe(2);
  });
});
