import { randomBytes } from 'node:crypto';
import { connect } from 'nats';
import { createTestDatabase, type TestDatabase } from '../support/database';
import { startProcess, type ServiceProcess } from '../support/process';

const ADMIN = { email: 'ops@revoke.test', password: 'revocation-e2e-password' };

/**
 * I7/I8 across processes: identity and objects as separate OS processes over NATS. A revoke
 * committed at identity (logout-all, password change, deactivation, API key revocation) is refused
 * by the objects process on the very next request.
 */
describe('revocation reaches another process at once', () => {
  let db: TestDatabase;
  const namespace = `e2erev${randomBytes(4).toString('hex')}`;
  const procs: ServiceProcess[] = [];
  let identity: string;
  let objects: string;

  beforeAll(async () => {
    db = await createTestDatabase('e2e_revoke');
    const env = {
      DATABASE_URL: db.url,
      NATS_URL: process.env.NATS_URL ?? 'nats://127.0.0.1:4222',
      CUSTODIAN_BUS_NAMESPACE: namespace,
      PORT: '0',
      HOST: '127.0.0.1',
      LOG_LEVEL: 'info',
      CUSTODIAN_MASTER_KEY: randomBytes(32).toString('base64'),
      CUSTODIAN_ADMIN_EMAIL: ADMIN.email,
      CUSTODIAN_ADMIN_PASSWORD: ADMIN.password,
      CUSTODIAN_SHUTDOWN_GRACE_MS: '2000',
    };
    procs.push(startProcess('dist/apps/identity/main.js', env));
    identity = `http://127.0.0.1:${await procs[0].port()}`;
    procs.push(startProcess('dist/apps/objects/main.js', env));
    objects = `http://127.0.0.1:${await procs[1].port()}`;
  }, 60_000);

  afterAll(async () => {
    await Promise.all(procs.map((p) => p.stop('SIGKILL')));
    const nc = await connect({ servers: process.env.NATS_URL ?? 'nats://127.0.0.1:4222' });
    await (await nc.jetstreamManager()).streams.delete(`${namespace.toUpperCase()}_EVENTS`).catch(() => undefined);
    await nc.close();
    await db?.drop();
  });

  const call = async (
    base: string,
    method: string,
    path: string,
    token?: string,
    body?: unknown,
  ): Promise<{ status: number; body: Record<string, unknown> }> => {
    const res = await fetch(`${base}/api/v1${path}`, {
      method,
      headers: {
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...(token ? { authorization: `Bearer ${token}` } : {}),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
  };
  const signIn = async (email: string, password: string): Promise<string> => {
    const res = await call(identity, 'POST', '/auth/login', undefined, { email, password });
    expect(res.status).toBe(200);
    return res.body.accessToken as string;
  };

  it('logout-all, API key revocation and deactivation are refused by objects on the next request', async () => {
    const admin = await signIn(ADMIN.email, ADMIN.password);
    const user = await call(identity, 'POST', '/users', admin, {
      email: 'worker@revoke.test',
      displayName: 'Worker',
      password: 'worker-long-password',
    });
    expect(user.status).toBe(201);

    const first = await signIn('worker@revoke.test', 'worker-long-password');
    expect((await call(objects, 'GET', '/meta/objects', first)).status).toBe(200);
    expect((await call(identity, 'POST', '/auth/logout-all', first, {})).status).toBe(200);
    expect((await call(objects, 'GET', '/meta/objects', first)).status).toBe(401);

    const key = await call(identity, 'POST', '/api-keys', admin, { name: 'e2e' });
    expect(key.status).toBe(201);
    expect((await call(objects, 'GET', '/meta/objects', key.body.key as string)).status).toBe(200);
    expect((await call(identity, 'DELETE', `/api-keys/${key.body.id as string}`, admin)).status).toBe(204);
    expect((await call(objects, 'GET', '/meta/objects', key.body.key as string)).status).toBe(401);

    const second = await signIn('worker@revoke.test', 'worker-long-password');
    expect((await call(objects, 'GET', '/meta/objects', second)).status).toBe(200);
    expect((await call(identity, 'PATCH', `/users/${user.body.id as string}`, admin, { active: false })).status).toBe(200);
    expect((await call(objects, 'GET', '/meta/objects', second)).status).toBe(401);
  });
});
