import { randomBytes } from 'node:crypto';
import { connect } from 'nats';
import { CustodianApiError } from '../../packages/client/src';
import { typedClient } from '../support/api';
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
    db = await createTestDatabase('e2e_revoke', { migrated: true });
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

  // Every call goes through the typed client (packages/client); a refused call throws CustodianApiError.
  const signIn = async (email: string, password: string): Promise<string> =>
    (await typedClient(identity).authLogin({ body: { email, password } })).accessToken;
  /** Objects lets the credential list the metadata (200), or refuses it as unauthenticated (401). */
  const objectsLetsIn = async (token: string): Promise<boolean> =>
    typedClient(objects, token)
      .objectMetadataList()
      .then(
        () => true,
        (error: unknown) => {
          if (error instanceof CustodianApiError && error.status === 401) return false;
          throw error;
        },
      );

  it('logout-all, API key revocation and deactivation are refused by objects on the next request', async () => {
    const admin = typedClient(identity, await signIn(ADMIN.email, ADMIN.password));
    const user = await admin.usersCreate({
      body: { email: 'worker@revoke.test', displayName: 'Worker', password: 'worker-long-password' },
    });
    expect(admin.lastStatus).toBe(201);

    const first = await signIn('worker@revoke.test', 'worker-long-password');
    expect(await objectsLetsIn(first)).toBe(true);
    await typedClient(identity, first).authLogoutAll();
    expect(await objectsLetsIn(first)).toBe(false);

    const key = await admin.apiKeysCreate({ body: { name: 'e2e' } });
    expect(admin.lastStatus).toBe(201);
    expect(await objectsLetsIn(key.key)).toBe(true);
    await admin.apiKeysRevoke({ id: key.id });
    expect(admin.lastStatus).toBe(204);
    expect(await objectsLetsIn(key.key)).toBe(false);

    const second = await signIn('worker@revoke.test', 'worker-long-password');
    expect(await objectsLetsIn(second)).toBe(true);
    await admin.usersUpdate({ id: user.id, body: { active: false } });
    expect(await objectsLetsIn(second)).toBe(false);
  });
});
