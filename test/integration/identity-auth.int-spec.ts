import type { Client } from 'pg';
import { SignJWT, decodeJwt, decodeProtectedHeader, generateKeyPair } from 'jose';
import pino from 'pino';
import type { Jwks } from '@custodian/contracts';
import { TokenVerifier } from '@custodian/platform';
import { pollUntil } from '../support/poll';
import { TEST_ADMIN, login, startTestHostWithDb, type TestHost } from '../support/host';
import { pinLoginLocks } from '../support/login-throttle';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- response bodies are asserted field by field
type Json = any;

/**
 * Sessions, refresh rotation (I6), killing sessions (I7), API keys (I8), brute force (I9) and
 * agent token exchange over HTTP on real PostgreSQL.
 */
describe('identity auth flows', () => {
  let t: TestHost;
  let base: string;
  let pg: Client;
  let admin: string;
  let ipCounter = 0;

  /** Each test speaks from its own client IP (trusted X-Forwarded-For from loopback) unless it says otherwise. */
  const call = async (
    method: string,
    path: string,
    token?: string,
    body?: unknown,
    ip?: string,
  ): Promise<{ status: number; body: Json; ms: number }> => {
    const started = performance.now();
    const res = await fetch(`${base}/api/v1${path}`, {
      method,
      headers: {
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...(token ? { authorization: `Bearer ${token}` } : {}),
        'x-forwarded-for': ip ?? `198.51.100.${++ipCounter % 250}`,
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined, ms: performance.now() - started };
  };
  const createUser = async (email: string, caps: string[] = []): Promise<{ userId: string; password: string }> => {
    const password = 'a-long-enough-password';
    const res = await call('POST', '/users', admin, { email, displayName: email.split('@')[0], password });
    expect(res.status).toBe(201);
    if (caps.length > 0) expect((await call('PATCH', `/users/${res.body.id}`, admin, { roleId: null })).status).toBe(200);
    if (caps.length > 0) {
      const orgId = (await call('GET', '/auth/me', admin)).body.orgId;
      expect((await call('PATCH', `/orgs/${orgId}/members/${res.body.id}`, admin, { capabilities: caps })).status).toBe(200);
    }
    return { userId: res.body.id, password };
  };
  const signIn = async (email: string, password = 'a-long-enough-password'): Promise<Json> => {
    const res = await call('POST', '/auth/login', undefined, { email, password });
    expect(res.status).toBe(200);
    return res.body;
  };

  beforeAll(async () => {
    // Strict rotation here (no reuse grace window): any second use of a refresh token is reuse.
    // The grace window has its own suite (identity-hardening.int-spec.ts).
    ({ t, base, pg, admin } = await startTestHostWithDb('idauth', { CUSTODIAN_REFRESH_REUSE_GRACE: '0' }));
  });

  afterAll(async () => {
    await pg?.end();
    await t?.stop();
  });

  describe('refresh tokens (I6)', () => {
    it('rotates on use; the new pair works, the old refresh token is refused and its reuse revokes the whole family', async () => {
      await createUser('rot@test.local');
      const first = await signIn('rot@test.local');
      const second = await call('POST', '/auth/refresh', undefined, { refreshToken: first.refreshToken });
      expect(second.status).toBe(200);
      expect(second.body.refreshToken).not.toBe(first.refreshToken);
      expect((await call('GET', '/auth/me', second.body.accessToken)).status).toBe(200);

      const reuse = await call('POST', '/auth/refresh', undefined, { refreshToken: first.refreshToken });
      expect(reuse.status).toBe(401);
      // The family is gone: the newest refresh token and the access tokens of the family are dead.
      expect((await call('POST', '/auth/refresh', undefined, { refreshToken: second.body.refreshToken })).status).toBe(401);
      expect((await call('GET', '/auth/me', second.body.accessToken)).status).toBe(401);
      expect((await call('GET', '/auth/me', first.accessToken)).status).toBe(401);
      await pollUntil(async () => (await pg.query(`SELECT 1 FROM audit.audit_event WHERE action = 'auth.refresh_reused'`)).rowCount, {
        what: 'reuse audited',
      });
    });

    it('a concurrent double refresh succeeds at most once', async () => {
      await createUser('race@test.local');
      for (let round = 0; round < 3; round++) {
        const session = await signIn('race@test.local');
        const results = await Promise.all(
          Array.from({ length: 4 }, () => call('POST', '/auth/refresh', undefined, { refreshToken: session.refreshToken })),
        );
        expect(results.filter((r) => r.status === 200).length).toBeLessThanOrEqual(1);
        expect(results.every((r) => r.status === 200 || r.status === 401)).toBe(true);
      }
    });

    it('refuses garbage refresh tokens with 401 and malformed bodies with 400', async () => {
      expect((await call('POST', '/auth/refresh', undefined, { refreshToken: 'crt_nope' })).status).toBe(401);
      expect((await call('POST', '/auth/refresh', undefined, { refreshToken: 5 })).status).toBe(400);
      expect((await call('POST', '/auth/refresh', undefined, {})).status).toBe(400);
    });
  });

  describe('sessions (I7)', () => {
    it('lists and revokes own sessions; another user\u2019s session id is not found', async () => {
      await createUser('sess@test.local');
      const a = await signIn('sess@test.local');
      const b = await signIn('sess@test.local');
      const list = await call('GET', '/sessions', a.accessToken);
      expect(list.status).toBe(200);
      expect(list.body.items).toHaveLength(2);
      const other = list.body.items.find((s: Json) => !s.current);
      expect((await call('DELETE', `/sessions/${other.id}`, admin)).status).toBe(404);
      expect((await call('DELETE', `/sessions/${other.id}`, a.accessToken)).status).toBe(204);
      expect((await call('GET', '/auth/me', b.accessToken)).status).toBe(401);
      expect((await call('GET', '/auth/me', a.accessToken)).status).toBe(200);
    });

    it('logout-all kills every session and refresh token at once', async () => {
      await createUser('all@test.local');
      const a = await signIn('all@test.local');
      const b = await signIn('all@test.local');
      const res = await call('POST', '/auth/logout-all', a.accessToken, {});
      expect(res.status).toBe(200);
      expect(res.body.revokedSessions).toBe(2);
      for (const s of [a, b]) {
        expect((await call('GET', '/auth/me', s.accessToken)).status).toBe(401);
        expect((await call('GET', '/meta/objects', s.accessToken)).status).toBe(401);
        expect((await call('POST', '/auth/refresh', undefined, { refreshToken: s.refreshToken })).status).toBe(401);
      }
    });

    it('a password change kills every session; the old password stops working', async () => {
      await createUser('pw@test.local');
      const a = await signIn('pw@test.local');
      const b = await signIn('pw@test.local');
      expect(
        (await call('POST', '/auth/password', a.accessToken, { currentPassword: 'wrong-password!', newPassword: 'another-long-password' }))
          .status,
      ).toBe(401);
      expect(
        (
          await call('POST', '/auth/password', a.accessToken, {
            currentPassword: 'a-long-enough-password',
            newPassword: 'another-long-password',
          })
        ).status,
      ).toBe(204);
      for (const s of [a, b]) {
        expect((await call('GET', '/auth/me', s.accessToken)).status).toBe(401);
        expect((await call('POST', '/auth/refresh', undefined, { refreshToken: s.refreshToken })).status).toBe(401);
      }
      expect((await call('POST', '/auth/login', undefined, { email: 'pw@test.local', password: 'a-long-enough-password' })).status).toBe(
        401,
      );
      expect((await call('POST', '/auth/login', undefined, { email: 'pw@test.local', password: 'another-long-password' })).status).toBe(
        200,
      );
    });
  });

  describe('API keys (I8)', () => {
    it('is shown once, stored only as prefix + keyed hash, acts as its user, and is refused at once after revocation', async () => {
      const created = await call('POST', '/api-keys', admin, { name: 'ci', scopes: ['manage_users'] });
      expect(created.status).toBe(201);
      const key: string = created.body.key;
      expect(key).toMatch(/^cak_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/);
      const secret = key.split('_').slice(2).join('_');
      const stored = await pg.query('SELECT row_to_json(k)::text AS row FROM identity.api_key k WHERE id = $1', [created.body.id]);
      expect(stored.rows[0].row).not.toContain(secret);
      expect(stored.rows[0].row).toContain(created.body.prefix);
      const listed = await call('GET', '/api-keys', admin);
      expect(JSON.stringify(listed.body)).not.toContain(secret);

      const me = await call('GET', '/auth/me', key);
      expect(me.status).toBe(200);
      expect(me.body).toMatchObject({ apiKeyId: created.body.id, capabilities: ['manage_users'] });
      expect((await call('GET', '/users', key)).status).toBe(200);
      expect((await call('GET', '/roles', key)).status).toBe(403); // scopes narrow the key
      expect((await call('GET', '/meta/objects', key)).status).toBe(200); // another service accepts it too
      await pollUntil(
        async () => (await pg.query('SELECT last_used_at FROM identity.api_key WHERE id = $1', [created.body.id])).rows[0].last_used_at,
        { what: 'last used' },
      );

      expect((await call('DELETE', `/api-keys/${created.body.id}`, admin)).status).toBe(204);
      expect((await call('GET', '/auth/me', key)).status).toBe(401);
      expect((await call('GET', '/meta/objects', key)).status).toBe(401);
      const row = await pollUntil(
        async () => (await pg.query(`SELECT event FROM audit.audit_event WHERE action = 'identity.api_key.created'`)).rows[0],
        { what: 'audit' },
      );
      expect(JSON.stringify(row)).not.toContain(secret);
    });

    it('cannot carry capabilities its creator does not hold', async () => {
      const u = await createUser('keyless@test.local', ['api_access']);
      const s = await signIn('keyless@test.local', u.password);
      expect((await call('POST', '/api-keys', s.accessToken, { name: 'x', scopes: ['manage_users'] })).status).toBe(403);
    });

    it('answers an unknown prefix and a wrong secret identically (status, body, timing)', async () => {
      const created = (await call('POST', '/api-keys', admin, { name: 'timing' })).body;
      const wrongSecret = `${created.prefix}_${'A'.repeat(43)}`;
      const unknownPrefix = `cak_${'0'.repeat(16)}_${created.key.split('_').slice(2).join('_')}`;
      const strip = (b: Json): Json => ({ ...b, requestId: undefined });
      const a = await call('GET', '/auth/me', wrongSecret);
      const b = await call('GET', '/auth/me', unknownPrefix);
      expect([a.status, b.status]).toEqual([401, 401]);
      expect(strip(a.body)).toEqual(strip(b.body));
      const times = { wrong: [] as number[], unknown: [] as number[] };
      for (let i = 0; i < 30; i++) {
        times.wrong.push((await call('GET', '/auth/me', wrongSecret)).ms);
        times.unknown.push((await call('GET', '/auth/me', unknownPrefix)).ms);
      }
      const median = (xs: number[]): number => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];
      // Same work on both paths: medians within a generous factor on a noisy shared machine.
      expect(median(times.wrong) / median(times.unknown)).toBeLessThan(2);
      expect(median(times.unknown) / median(times.wrong)).toBeLessThan(2);
    });
  });

  describe('brute force (I9)', () => {
    it('locks an account after repeated failures with a generic answer, for known and unknown emails alike', async () => {
      await createUser('victim@test.local');
      const attempt = (email: string, password: string, i: number) =>
        call('POST', '/auth/login', undefined, { email, password }, `203.0.113.${i}`);
      const guessingStarted = (await pg.query('SELECT now() AS t')).rows[0].t as Date;
      for (let i = 0; i < 5; i++) {
        expect((await attempt('victim@test.local', 'wrong-password', i)).status).toBe(401);
        expect((await attempt('ghost@test.local', 'wrong-password', i)).status).toBe(401);
      }
      // The first lock lasts 1 s and may run out on a busy machine before the two answers below: pin
      // both accounts' locks for those answers; released, they must still run out by themselves.
      const locks = await pinLoginLocks(pg, guessingStarted);
      expect(locks.count).toBeGreaterThanOrEqual(2);
      const locked = await attempt('victim@test.local', 'a-long-enough-password', 99);
      const ghost = await attempt('ghost@test.local', 'a-long-enough-password', 99);
      expect(locked.status).toBe(429);
      expect(ghost.status).toBe(429);
      expect({ ...locked.body, requestId: undefined }).toEqual({ ...ghost.body, requestId: undefined });
      expect(locked.body.code).toBe('rate_limited');
      expect(JSON.stringify(locked.body)).not.toMatch(/password|victim|exists/i);
      await locks.release();
      // The lock expires: after it, the right password works and clears the counter.
      await pollUntil(async () => (await attempt('victim@test.local', 'a-long-enough-password', 100)).status === 200, {
        what: 'lock expires',
        timeoutMs: 5000,
        intervalMs: 250,
      });
    });

    it('limits password spraying from one IP across many accounts', async () => {
      const ip = '192.0.2.77';
      let last = 0;
      for (let i = 0; i < 31; i++)
        last = (await call('POST', '/auth/login', undefined, { email: `spray${i}@test.local`, password: 'Summer2026!' }, ip)).status;
      expect(last).toBe(429);
      // The admin signing in from elsewhere is not affected.
      expect((await call('POST', '/auth/login', undefined, TEST_ADMIN, '192.0.2.78')).status).toBe(200);
      await pollUntil(async () => (await pg.query(`SELECT 1 FROM audit.audit_event WHERE action = 'auth.login_locked'`)).rowCount, {
        what: 'lock audited',
      });
    });
  });

  describe('agent token exchange (R7)', () => {
    const exchange = (subject: string, extra: Record<string, unknown> = {}) =>
      call('POST', '/auth/token-exchange', undefined, {
        grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
        subject_token: subject,
        subject_token_type: 'urn:ietf:params:oauth:token-type:access_token',
        scope: 'data:read',
        client_id: 'claude-desktop',
        agent_name: 'Claude',
        ...extra,
      });

    it('issues a delegated token (sub = user, act = agent, scope = requested) that never widens', async () => {
      const res = await exchange(admin);
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({
        token_type: 'Bearer',
        issued_token_type: 'urn:ietf:params:oauth:token-type:access_token',
        scope: 'data:read',
      });
      const claims = decodeJwt(res.body.access_token);
      const me = (await call('GET', '/auth/me', admin)).body;
      expect(claims).toMatchObject({ sub: me.userId, act: { sub: 'claude-desktop' }, scope: 'data:read', org: me.orgId });
      const asAgent = await call('GET', '/auth/me', res.body.access_token);
      expect(asAgent.status).toBe(200);
      expect(asAgent.body.agent).toEqual({ clientId: 'claude-desktop', name: 'Claude', scopes: ['data:read'] });
      // Administrative capabilities do not pass to the agent.
      expect(asAgent.body.capabilities).not.toContain('manage_users');
      expect((await call('GET', '/users', res.body.access_token)).status).toBe(403);
      // No re-delegation, no unknown scopes.
      expect((await exchange(res.body.access_token)).status).toBe(400);
      expect((await exchange(admin, { scope: 'data:read admin:all' })).status).toBe(400);
      expect((await exchange('not-a-token')).status).toBe(401);
    });

    it('accepts an API key as subject only if the key carries agent_access; the token dies with the key', async () => {
      const scoped = (await call('POST', '/api-keys', admin, { name: 'agent', scopes: ['agent_access'] })).body;
      const unscoped = (await call('POST', '/api-keys', admin, { name: 'no-agent', scopes: ['api_access'] })).body;
      const keyType = { subject_token_type: 'urn:custodian:token-type:api_key' };
      expect((await exchange(unscoped.key, keyType)).status).toBe(403);
      expect((await exchange(scoped.key)).status).toBe(401); // declared type must match the credential
      const res = await exchange(scoped.key, keyType);
      expect(res.status).toBe(200);
      expect(decodeJwt(res.body.access_token)).toMatchObject({ akid: scoped.id, act: { sub: 'claude-desktop' } });
      expect((await call('GET', '/auth/me', res.body.access_token)).body).toMatchObject({
        apiKeyId: scoped.id,
        agent: { scopes: ['data:read'] },
        capabilities: ['agent_access'], // the key's scope ∩ what an agent may hold, never api_access/mcp_access of the user
      });
      expect((await call('DELETE', `/api-keys/${scoped.id}`, admin)).status).toBe(204);
      expect((await call('GET', '/auth/me', res.body.access_token)).status).toBe(401);
    });

    it('requires agent_access and dies with the subject session', async () => {
      await createUser('noagent@test.local');
      const s = await signIn('noagent@test.local');
      expect((await exchange(s.accessToken)).status).toBe(403);
      const adminSession = await login(base);
      const delegated = (await exchange(adminSession.accessToken)).body.access_token;
      expect((await call('GET', '/auth/me', delegated)).status).toBe(200);
      expect((await call('POST', '/auth/logout', adminSession.accessToken, {})).status).toBe(204);
      expect((await call('GET', '/auth/me', delegated)).status).toBe(401);
    });
  });

  describe('forged access tokens over HTTP (I1–I4)', () => {
    it('are refused with 401 by identity and by another service, before any key lookup for bad headers', async () => {
      const real = await login(base);
      const header = decodeProtectedHeader(real.accessToken);
      const claims = decodeJwt(real.accessToken);
      const b64 = (o: object): string => Buffer.from(JSON.stringify(o)).toString('base64url');
      const now = Math.floor(Date.now() / 1000);
      const body = { ...claims, iat: now, exp: now + 300 };
      const jwks = (await (await fetch(`${base}/.well-known/jwks.json`)).json()) as Jwks;
      const x = jwks.keys.find((k) => k.kid === header.kid)!.x!;
      const { privateKey: foreignKey } = await generateKeyPair('EdDSA');
      const signWith = (h: Record<string, unknown>, p: Record<string, unknown>, key = foreignKey): Promise<string> =>
        new SignJWT(p).setProtectedHeader({ alg: 'EdDSA', typ: 'at+jwt', kid: header.kid, ...h } as never).sign(key);
      const forged = [
        `${b64({ alg: 'none', typ: 'at+jwt', kid: header.kid })}.${b64(body)}.`,
        await new SignJWT(body).setProtectedHeader({ alg: 'HS256', typ: 'at+jwt', kid: header.kid! }).sign(Buffer.from(x, 'base64url')),
        await signWith({}, body), // right kid, foreign key
        await signWith({ jku: 'https://evil.example/jwks.json' }, body),
        await signWith({ kid: '../../etc/passwd' }, body),
        await signWith({ kid: "1' OR '1'='1" }, body),
        await signWith({ kid: 'k'.repeat(10_000) }, body),
        await signWith({ typ: 'JWT' }, body),
        `${real.accessToken.split('.')[0]}.${b64({ ...body, aud: 'urn:other' })}.${real.accessToken.split('.')[2]}`,
        `${real.accessToken.split('.')[0]}.${b64({ ...body, exp: now - 3600 })}.${real.accessToken.split('.')[2]}`,
        real.refreshToken,
      ];
      for (const token of forged) {
        expect((await call('GET', '/auth/me', token)).status).toBe(401);
        expect((await call('GET', '/meta/objects', token)).status).toBe(401);
      }
      expect((await call('GET', '/auth/me', real.accessToken)).status).toBe(200);
    });
  });
  // Last: an immediate rotation (activateAfterSeconds 0) leaves warm verifiers refusing the new kid
  // until their refetch cooldown passes — the reason rotations pre-publish by default (docs/identity.md).
  describe('signing key rotation (I5)', () => {
    it('the new key signs at once, the old one verifies until retired; a verifier needs one JWKS refetch', async () => {
      const fetches: number[] = [];
      const verifier = new TokenVerifier(
        { issuer: 'urn:custodian:identity', audience: 'urn:custodian:api', clockToleranceSeconds: 0, refetchCooldownMs: 0 },
        async () => {
          fetches.push(Date.now());
          return (await (await fetch(`${base}/.well-known/jwks.json`)).json()) as Jwks;
        },
        pino({ level: 'silent' }),
      );
      const before = await login(base);
      await verifier.verify(before.accessToken);
      expect(fetches).toHaveLength(1);
      const oldKid = decodeProtectedHeader(before.accessToken).kid!;

      const rotated = await call('POST', '/signing-keys/rotate', admin, { activateAfterSeconds: 0 });
      expect(rotated.status).toBe(201);
      const after = await login(base);
      const newKid = decodeProtectedHeader(after.accessToken).kid!;
      expect(newKid).toBe(rotated.body.kid);
      expect(newKid).not.toBe(oldKid);
      await verifier.verify(after.accessToken);
      await verifier.verify(before.accessToken);
      expect(fetches).toHaveLength(2);

      // Pre-published rotation: in the JWKS at once, signing later; the signer cannot be retired.
      const ahead = await call('POST', '/signing-keys/rotate', admin, { activateAfterSeconds: 3600 });
      const jwks = (await (await fetch(`${base}/.well-known/jwks.json`)).json()) as Jwks;
      expect(jwks.keys.map((k) => k.kid)).toEqual(expect.arrayContaining([oldKid, newKid, ahead.body.kid]));
      expect(decodeProtectedHeader((await login(base)).accessToken).kid).toBe(newKid);
      expect((await call('POST', `/signing-keys/${newKid}/retire`, admin, {})).status).toBe(409);
      expect((await call('POST', `/signing-keys/${oldKid}/retire`, admin, {})).status).toBe(201);
      const after2 = (await (await fetch(`${base}/.well-known/jwks.json`)).json()) as Jwks;
      expect(after2.keys.map((k) => k.kid)).not.toContain(oldKid);
      const fresh = new TokenVerifier(
        { issuer: 'urn:custodian:identity', audience: 'urn:custodian:api', clockToleranceSeconds: 0 },
        async () => after2,
        pino({ level: 'silent' }),
      );
      await expect(fresh.verify(before.accessToken)).rejects.toMatchObject({ code: 'unauthenticated' });
    });

    it('a rotation and a retirement are audited installation-wide with their change; a refused retirement changes and audits nothing', async () => {
      const me = (await call('GET', '/auth/me', admin)).body as { userId: string };
      const auditOf = async (action: string, kid: string) =>
        (await pg.query(`SELECT event FROM audit.audit_event WHERE action = $1 AND event->'target'->>'id' = $2`, [action, kid])).rows.map(
          (r: { event: Record<string, unknown> }) => r.event,
        );
      const keys = async () => ((await call('GET', '/signing-keys', admin)).body as { items: Array<Record<string, unknown>> }).items;
      const signer = (await keys()).find((k) => k.signing)!.kid as string;

      const ahead = await call('POST', '/signing-keys/rotate', admin, { activateAfterSeconds: 3600 });
      expect(ahead.status).toBe(201);
      const refused = await call('POST', `/signing-keys/${ahead.body.kid}/retire`, admin, {});
      expect(refused.status).toBe(409);
      expect(refused.body.code).toBe('conflict');
      expect((await keys()).find((k) => k.kid === ahead.body.kid)).toMatchObject({ active: true, retiredAt: null });

      const now = await call('POST', '/signing-keys/rotate', admin, { activateAfterSeconds: 0 });
      expect(now.body).toMatchObject({ signing: true, activatesAt: null });
      const retired = await call('POST', `/signing-keys/${signer}/retire`, admin, {});
      expect(retired.status).toBe(201);
      expect(retired.body).toMatchObject({ kid: signer, active: false, signing: false });

      // The retirement's event is the last of the four changes: once it is stored, the others are too.
      const [retiredEvent] = await pollUntil(
        async () => {
          const events = await auditOf('identity.signing_key.retired', signer);
          return events.length ? events : undefined;
        },
        { what: 'retirement audited' },
      );
      expect(retiredEvent).toMatchObject({
        orgId: null,
        outcome: 'success',
        target: { type: 'signing_key', id: signer },
        actor: { userId: me.userId },
      });
      for (const key of [ahead.body, now.body]) {
        const [event, ...more] = await auditOf('identity.signing_key.rotated', key.kid);
        expect(more).toHaveLength(0);
        expect(event).toMatchObject({
          orgId: null,
          outcome: 'success',
          target: { type: 'signing_key', id: key.kid },
          details: { activatesAt: key.activatesAt },
          actor: { userId: me.userId },
        });
      }
      expect(await auditOf('identity.signing_key.retired', ahead.body.kid)).toEqual([]);
    });
  });
});
