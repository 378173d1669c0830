import { randomUUID } from 'node:crypto';
import {
  AuthenticateApiKey,
  CredentialRevoked,
  ErrorCode,
  GetJwks,
  GetPrincipalSnapshot,
  PolicyVersionChanged,
  type EventContract,
  type Jwks,
  type PrincipalSnapshot,
} from '@custodian/contracts';
import { exportJWK, generateKeyPair, SignJWT, type KeyLike } from 'jose';
import pino from 'pino';
import type { BroadcastHandler, ListenOptions } from '../bus/bus';
import { InProcessBus } from '../bus/in-process.bus';
import { CustodianException } from '../errors/custodian.exception';
import { PrincipalResolver } from './principal-resolver';

// The principal cache (R10): reuse a snapshot per credential, and never after identity said the
// credential was revoked or the org's policy moved on. "identity" here is a handler on a real
// in-process bus that counts how often it is asked and refuses what was revoked.

const logger = pino({ level: 'silent' });
const ISSUER = 'urn:custodian:identity';
const AUDIENCE = 'urn:custodian:api';

/** The in-process bus, with a way to simulate a transport gap and an unready bus. */
class GappyBus extends InProcessBus {
  ready = true;
  private readonly gaps: Array<() => void> = [];
  override listen<E extends EventContract>(contract: E, handler: BroadcastHandler<E>, opts?: ListenOptions): Promise<void> {
    if (opts?.onGap) this.gaps.push(opts.onGap);
    return super.listen(contract, handler, opts);
  }
  override isReady(): boolean {
    return this.ready && super.isReady();
  }
  gap(): void {
    for (const g of this.gaps) g();
  }
}

interface World {
  bus: GappyBus;
  resolver: PrincipalResolver;
  asked: () => number;
  revoked: Set<string>;
  version: { value: number };
  credentialExpiresAt: { value?: string };
  orgId: string;
  userId: string;
  /** Makes identity's next answer wait for `release` (to interleave events with a fill). */
  hold: () => { started: Promise<void>; release: () => void };
  signToken: (o?: { sid?: string; expiresInSeconds?: number }) => Promise<string>;
}

async function world(ttlMs = 60_000): Promise<World> {
  const bus = new GappyBus(logger);
  const orgId = randomUUID();
  const userId = randomUUID();
  const revoked = new Set<string>();
  const version = { value: 3 };
  const credentialExpiresAt: { value?: string } = {};
  let asked = 0;
  let gate: { started: () => void; wait: Promise<void> } | undefined;
  const { privateKey, publicKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
  const jwk = await exportJWK(publicKey);
  const jwks: Jwks = { keys: [{ kty: jwk.kty!, crv: jwk.crv, x: jwk.x, kid: 'k1', alg: 'EdDSA', use: 'sig' }] };
  const answer = async (credential: { sessionId?: string; apiKeyId?: string }): Promise<PrincipalSnapshot> => {
    asked++;
    if (gate) {
      const g = gate;
      gate = undefined;
      g.started();
      await g.wait;
    }
    const id = credential.sessionId ?? credential.apiKeyId!;
    if (revoked.has(id) || revoked.has(userId)) throw CustodianException.unauthenticated('revoked');
    return {
      userId,
      orgId,
      email: 'u@example.test',
      ...credential,
      capabilities: [],
      roleId: null,
      ancestorRoleIds: [],
      groupIds: [],
      policyVersion: version.value,
      permissionSets: [],
      ...(credentialExpiresAt.value ? { credentialExpiresAt: credentialExpiresAt.value } : {}),
    };
  };
  await bus.handle(GetJwks, async () => jwks);
  await bus.handle(AuthenticateApiKey, async (req) => answer({ apiKeyId: keyIdOf(req.key) }));
  await bus.handle(GetPrincipalSnapshot, async (req) => answer({ sessionId: req.sessionId }));
  const resolver = new PrincipalResolver(bus, { issuer: ISSUER, audience: AUDIENCE, clockToleranceSeconds: 0 }, logger, { ttlMs });
  await resolver.start();
  return {
    bus,
    resolver,
    asked: () => asked,
    revoked,
    version,
    credentialExpiresAt,
    orgId,
    userId,
    hold: () => {
      let started!: () => void;
      let release!: () => void;
      const startedP = new Promise<void>((r) => (started = r));
      const wait = new Promise<void>((r) => (release = r));
      gate = { started, wait };
      return { started: startedP, release };
    },
    signToken: async (o = {}) =>
      new SignJWT({ sub: userId, org: orgId, sid: o.sid ?? randomUUID() })
        .setProtectedHeader({ alg: 'EdDSA', kid: 'k1', typ: 'at+jwt' })
        .setIssuedAt()
        .setIssuer(ISSUER)
        .setAudience(AUDIENCE)
        .setExpirationTime(Math.floor(Date.now() / 1000) + (o.expiresInSeconds ?? 300))
        .sign(privateKey as KeyLike),
  };
}

/** API keys in this test: `cak_<uuid>_secret`, the uuid standing for the key id. */
const apiKey = (id = randomUUID()): { key: string; id: string } => ({ key: `cak_${id}_secret`, id });
const keyIdOf = (key: string): string => key.slice(4, 40);

async function revoke(w: World, kind: 'session' | 'api_key' | 'user', id: string): Promise<void> {
  w.revoked.add(id);
  await w.bus.publish(
    CredentialRevoked,
    { eventId: randomUUID(), orgId: w.orgId, kind, ids: [id], reason: 'test' },
    { messageId: randomUUID() },
  );
}

const refused = { code: ErrorCode.Unauthenticated };

describe('principal cache', () => {
  const worlds: World[] = [];
  const make = async (ttlMs?: number): Promise<World> => {
    const w = await world(ttlMs);
    worlds.push(w);
    return w;
  };
  afterAll(async () => {
    await Promise.all(worlds.map((w) => w.bus.drain()));
  });

  it('asks identity once per credential while nothing changes', async () => {
    const w = await make();
    const key = apiKey();
    const token = await w.signToken();
    for (let i = 0; i < 5; i++) {
      await expect(w.resolver.resolveBearer(key.key)).resolves.toMatchObject({ apiKeyId: key.id });
      await expect(w.resolver.resolveBearer(token)).resolves.toMatchObject({ userId: w.userId });
    }
    expect(w.asked()).toBe(2);
    expect(w.resolver.stats()).toMatchObject({ entries: 2, hits: 8, misses: 2 });
  });

  it.each([
    ['session', 'a logout'],
    ['api_key', 'an API key revocation'],
    ['user', 'a deactivation'],
  ] as const)('refuses the very next request after %s revocation (%s)', async (kind, _what) => {
    const w = await make();
    const sid = randomUUID();
    const key = apiKey();
    const credential = kind === 'api_key' ? key.key : await w.signToken({ sid });
    const other = kind === 'api_key' ? apiKey().key : await w.signToken();
    await w.resolver.resolveBearer(credential);
    await w.resolver.resolveBearer(other);
    await revoke(w, kind, kind === 'session' ? sid : kind === 'api_key' ? key.id : w.userId);
    await expect(w.resolver.resolveBearer(credential)).rejects.toMatchObject(refused);
    // Only the revoked credential's entry was dropped (unless the whole user was revoked).
    if (kind === 'user') await expect(w.resolver.resolveBearer(other)).rejects.toMatchObject(refused);
    else await expect(w.resolver.resolveBearer(other)).resolves.toMatchObject({ userId: w.userId });
  });

  it('drops snapshots older than an announced policy version, and never caches one older than it', async () => {
    const w = await make();
    const key = apiKey();
    await expect(w.resolver.resolveBearer(key.key)).resolves.toMatchObject({ policyVersion: 3 });
    w.version.value = 4;
    await w.bus.publish(PolicyVersionChanged, { orgId: w.orgId, policyVersion: 4, reason: 'test' }, { messageId: randomUUID() });
    await expect(w.resolver.resolveBearer(key.key)).resolves.toMatchObject({ policyVersion: 4 });
    // An announcement of a version identity does not answer yet: every answer is used once, never cached.
    await w.bus.publish(PolicyVersionChanged, { orgId: w.orgId, policyVersion: 9, reason: 'test' }, { messageId: randomUUID() });
    const before = w.asked();
    await w.resolver.resolveBearer(key.key);
    await w.resolver.resolveBearer(key.key);
    expect(w.asked()).toBe(before + 2);
  });

  it('does not use a cached snapshot older than the version the request carries', async () => {
    const w = await make();
    const key = apiKey();
    await w.resolver.resolveBearer(key.key);
    w.version.value = 5;
    await expect(w.resolver.resolveBearer(key.key, 3)).resolves.toMatchObject({ policyVersion: 3 }); // cached is new enough
    await expect(w.resolver.resolveBearer(key.key, 5)).resolves.toMatchObject({ policyVersion: 5 });
    await expect(w.resolver.resolveBearer(key.key)).resolves.toMatchObject({ policyVersion: 5 }); // and the fresh one is cached
  });

  it('does not cache a snapshot whose fetch raced a revocation', async () => {
    const w = await make();
    const key = apiKey();
    const held = w.hold();
    const inFlight = w.resolver.resolveBearer(key.key);
    await held.started;
    // The revoke commits and is announced while identity's (older) answer is on its way.
    await w.bus.publish(
      CredentialRevoked,
      { eventId: randomUUID(), orgId: w.orgId, kind: 'api_key', ids: [key.id], reason: 'test' },
      { messageId: randomUUID() },
    );
    held.release();
    await expect(inFlight).resolves.toMatchObject({ apiKeyId: key.id });
    w.revoked.add(key.id);
    await expect(w.resolver.resolveBearer(key.key)).rejects.toMatchObject(refused);
  });

  it('forgets everything on a bus gap and serves nothing from the cache while the bus is down', async () => {
    const w = await make();
    const key = apiKey();
    await w.resolver.resolveBearer(key.key);
    w.bus.gap();
    expect(w.resolver.stats().entries).toBe(0);
    await w.resolver.resolveBearer(key.key);
    w.bus.ready = false;
    const before = w.asked();
    await w.resolver.resolveBearer(key.key);
    expect(w.asked()).toBe(before + 1);
  });

  it('never uses an entry past its TTL, the token exp or the credential expiry', async () => {
    const shortTtl = await make(1);
    const key = apiKey();
    await shortTtl.resolver.resolveBearer(key.key);
    const t = Date.now();
    while (Date.now() - t < 3) {
      // busy-wait 3 ms: the TTL is 1 ms
    }
    await shortTtl.resolver.resolveBearer(key.key);
    expect(shortTtl.asked()).toBe(2);

    const w = await make();
    w.credentialExpiresAt.value = new Date(Date.now() - 1).toISOString(); // already expired
    const expiringKey = apiKey();
    await w.resolver.resolveBearer(expiringKey.key);
    await w.resolver.resolveBearer(expiringKey.key);
    expect(w.asked()).toBe(2);
    w.credentialExpiresAt.value = undefined;
    const expired = await w.signToken({ expiresInSeconds: -1 });
    await expect(w.resolver.resolveBearer(expired)).rejects.toMatchObject(refused);
  });

  it('is off with a TTL of 0', async () => {
    const w = await make(0);
    const key = apiKey();
    await w.resolver.resolveBearer(key.key);
    await w.resolver.resolveBearer(key.key);
    expect(w.asked()).toBe(2);
  });
});
