import { randomBytes } from 'node:crypto';
import { connect } from 'nats';
import { Client } from 'pg';
import { typedClient } from '../support/api';
import { createTestDatabase, type TestDatabase } from '../support/database';
import { pollUntil } from '../support/poll';
import { startProcess, type ServiceProcess } from '../support/process';

const ADMIN = { email: 'ops@dist.test', password: 'distributed-mode-password' };

/**
 * Distributed mode for real: identity, objects and audit as three OS processes sharing only
 * PostgreSQL (each in its own schema) and NATS. Objects resolves callers by asking identity over
 * NATS; audit events travel outbox → JetStream → audit store.
 */
describe('services as separate processes over NATS', () => {
  let db: TestDatabase;
  const namespace = `e2e${randomBytes(4).toString('hex')}`;
  const procs: Record<string, ServiceProcess> = {};
  const urls: Record<string, string> = {};

  const envFor = (): Record<string, string> => ({
    DATABASE_URL: db.url,
    NATS_URL: process.env.NATS_URL ?? 'nats://127.0.0.1:4222',
    CUSTODIAN_BUS_NAMESPACE: namespace,
    PORT: '0',
    HOST: '127.0.0.1',
    LOG_LEVEL: 'info',
    CUSTODIAN_MASTER_KEY: masterKey,
    CUSTODIAN_ADMIN_EMAIL: ADMIN.email,
    CUSTODIAN_ADMIN_PASSWORD: ADMIN.password,
    CUSTODIAN_SHUTDOWN_GRACE_MS: '3000',
  });
  const masterKey = randomBytes(32).toString('base64');

  beforeAll(async () => {
    db = await createTestDatabase('e2e_dist', { migrated: true });
    for (const service of ['identity', 'objects', 'audit']) {
      procs[service] = startProcess(`dist/apps/${service}/main.js`, envFor());
    }
    for (const service of Object.keys(procs)) urls[service] = `http://127.0.0.1:${await procs[service].port()}`;
  }, 60_000);

  afterAll(async () => {
    await Promise.all(Object.values(procs).map((p) => p.stop('SIGKILL')));
    const nc = await connect({ servers: process.env.NATS_URL ?? 'nats://127.0.0.1:4222' });
    const jsm = await nc.jetstreamManager();
    await jsm.streams.delete(`${namespace.toUpperCase()}_EVENTS`).catch(() => undefined);
    await nc.close();
    await db?.drop();
  });

  /** Signs in at the identity process through the typed client (packages/client). */
  const loginAtIdentity = async (): Promise<string> => (await typedClient(urls.identity).authLogin({ body: ADMIN })).accessToken;

  it('each process is ready on its own', async () => {
    for (const url of Object.values(urls)) {
      const res = await fetch(`${url}/health/ready`);
      expect(res.status).toBe(200);
    }
  });

  it('a token from identity works at objects, which asks identity for the principal over NATS', async () => {
    const token = await loginAtIdentity();
    const objects = typedClient(urls.objects, token);
    expect(await objects.objectMetadataList()).toEqual({ items: [], nextCursor: null, policyVersion: 1 });
    // Logging out at identity is seen by objects at once: the snapshot call says the session is dead.
    const identity = typedClient(urls.identity, token);
    await identity.authLogout();
    expect(identity.lastStatus).toBe(204);
    await expect(objects.objectMetadataList()).rejects.toMatchObject({ status: 401 });
  });

  it('audit events from identity reach the audit process through JetStream, once each', async () => {
    const pg = new Client({ connectionString: db.url });
    await pg.connect();
    try {
      const actions = await pollUntil(
        async () => {
          const r = await pg.query<{ action: string }>(`SELECT action FROM audit.audit_event ORDER BY occurred_at`);
          const list = r.rows.map((x) => x.action);
          return list.includes('auth.logout') ? list : undefined;
        },
        { what: 'audit events', timeoutMs: 15_000 },
      );
      expect(actions).toEqual(expect.arrayContaining(['identity.bootstrapped', 'auth.login', 'auth.logout']));
      const outbox = await pg.query<{ n: number }>(`SELECT count(*)::int AS n FROM identity.outbox`);
      const stored = await pg.query<{ n: number }>(`SELECT count(*)::int AS n FROM audit.audit_event WHERE service = 'identity'`);
      expect(stored.rows[0].n).toBe(outbox.rows[0].n);
    } finally {
      await pg.end();
    }
  });

  it('when identity is gone, objects answers 503 with a problem document instead of hanging', async () => {
    const token = await loginAtIdentity();
    expect(await procs.identity.stop('SIGTERM')).toBe(0);
    const started = Date.now();
    // Raw HTTP: the test reads the content type of the problem document.
    const res = await fetch(`${urls.objects}/api/v1/meta/objects`, { headers: { authorization: `Bearer ${token}` } });
    expect(res.status).toBe(503);
    expect(res.headers.get('content-type')).toMatch(/problem\+json/);
    expect(((await res.json()) as { code: string }).code).toBe('bus_no_responders');
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('SIGTERM stops a service cleanly (exit code 0)', async () => {
    expect(await procs.objects.stop('SIGTERM')).toBe(0);
    expect(procs.objects.output.some((l) => l.includes('"stopped"'))).toBe(true);
  });
});

describe('a service with invalid configuration', () => {
  it('refuses to start and says what is wrong, without echoing secrets', async () => {
    const p = startProcess('dist/apps/identity/main.js', {
      PORT: 'eighty',
      CUSTODIAN_MASTER_KEY: 'c2hvcnQ=',
      CUSTODIAN_ADMIN_PASSWORD: 'tiny',
    });
    const code = await new Promise<number | null>((resolve) => p.proc.once('exit', resolve));
    expect(code).toBe(1);
    const text = p.output.join('\n');
    expect(text).toContain('PORT must be an integer');
    expect(text).toContain('DATABASE_URL is required');
    expect(text).toContain('NATS_URL is required');
    expect(text).toContain('master key must be 32 bytes');
    expect(text).not.toContain('c2hvcnQ=');
  });
});
