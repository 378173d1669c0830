import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Client as Pg } from 'pg';
import { createAgentUser } from '../support/agent-gateway';
import { apiClient, type Json } from '../support/api';
import { startFakeModelServer, type FakeModelServer, type Step } from '../support/fake-model-server';
import { login, startTestHost, type TestHost } from '../support/host';
import { pollUntil } from '../support/poll';

// Every log line of every service of the host, in order (its loggers write here instead of stdout).
const mockLogLines: string[] = [];
jest.mock('../../libs/platform/src/logging/logger', () => {
  const actual = jest.requireActual<typeof import('../../libs/platform/src/logging/logger')>('../../libs/platform/src/logging/logger');
  return {
    ...actual,
    createLogger: (opts: Parameters<typeof actual.createLogger>[0]) =>
      actual.createLogger({ ...opts, destination: { write: (line: string) => void mockLogLines.push(line) } }),
  };
});

const PASSWORD = 'a-long-enough-password';
const tag = randomBytes(6).toString('hex');
const ENV_NAME = `CUSTODIAN_SECRET_R1_${tag.toUpperCase()}`;
const MARKER = `marker-${tag}`;
const SECRETS = {
  encrypted: `sk-sealed-${tag}-9f1c`,
  env: `sk-env-${tag}-0a7e`,
  envRotated: `sk-env-rotated-${tag}-51bd`,
  file: `sk-file-${tag}-c3d2`,
  fileRotated: `sk-file-rotated-${tag}-e884`,
};

/**
 * Secrets of `model.api_key` end to end: stored as an `env:` or `file:` reference and read when a
 * request goes (a rotated variable or file is used by the next request), the encrypted form, and a
 * reference that no longer resolves. Every secret value is then looked for in every log line the
 * host wrote (LOG_LEVEL trace, its pino loggers captured), in anything written to stdout, stderr or
 * the console, and in every row of every table of the database (audit events and outboxes included):
 * after requests the model refused (401, with an error that echoes the key as some providers do),
 * failed (500) and answered.
 */
describe('agent runtime: model.api_key by reference, used end to end; secret values never logged or stored in the clear', () => {
  let t: TestHost;
  let db: Pg;
  let fake: FakeModelServer;
  const secretDir = mkdtempSync(path.join(tmpdir(), 'custodian-secrets-'));
  const keyFile = path.join(secretDir, 'model-api-key');
  const { call, ok } = apiClient(() => t.host.url);
  const tokens: Record<string, string> = {};
  let profileId: string;
  const written: string[] = [];
  const restores: Array<() => void> = [];

  const setting = (name: string, value: unknown): Promise<Json> => ok(call('PUT', `/agent/settings/${name}`, tokens.admin, { value }));
  const converse = async (): Promise<string> => (await ok(call('POST', '/agent/conversations', tokens.user, { profileId }), 201)).id;
  const say = async (id: string, content: string): Promise<Json> =>
    ok(call('POST', `/agent/conversations/${id}/messages`, tokens.user, { content }));
  /** One message in a new conversation; the Authorization header the model received with it, if one came. */
  const ask = async (content: string): Promise<{ answer: Json; authorization: string | undefined; requests: number }> => {
    const before = fake.requests.length;
    const answer = await say(await converse(), content);
    return { answer, authorization: fake.authorizations.at(-1), requests: fake.requests.length - before };
  };

  beforeAll(async () => {
    // Anything that bypasses the loggers (a stray console.log, a raw write) is captured too.
    for (const stream of [process.stdout, process.stderr]) {
      const spy = jest.spyOn(stream, 'write').mockImplementation(function (this: NodeJS.WriteStream, ...args: unknown[]) {
        written.push(String(args[0]));
        return true;
      } as never);
      restores.push(() => spy.mockRestore());
    }
    for (const level of ['log', 'info', 'warn', 'error', 'debug', 'trace'] as const) {
      const spy = jest.spyOn(console, level).mockImplementation((...args: unknown[]) => void written.push(args.map(String).join(' ')));
      restores.push(() => spy.mockRestore());
    }
    process.env[ENV_NAME] = SECRETS.env;
    writeFileSync(keyFile, `${SECRETS.file}\n`, { mode: 0o600 });
    fake = await startFakeModelServer(() => ({ text: 'ok' }));
    t = await startTestHost('agent_secret_refs', { LOG_LEVEL: 'trace', CUSTODIAN_SECRET_FILE_DIRS: secretDir });
    db = new Pg({ connectionString: t.db.url });
    await db.connect();
    tokens.admin = (await login(t.host.url)).accessToken;
    tokens.user = (await createAgentUser(t.host.url, tokens.admin, 'user', PASSWORD)).accessToken;
    profileId = (
      await ok(call('POST', '/agent/profiles', tokens.admin, { name: 'Keyed', model: 'fake-model', scopes: ['data:read'] }), 201)
    ).id;
    await setting('model.base_url', fake.url);
    await setting('model.max_retries', 0);
    await setting('model.timeout_ms', 5000);
  }, 180_000);

  afterAll(async () => {
    restores.splice(0).forEach((r) => r());
    delete process.env[ENV_NAME];
    await db?.end();
    await t?.stop();
    await fake?.close();
    rmSync(secretDir, { recursive: true, force: true });
  });

  it('an env: reference: the model receives Bearer <the variable’s value>, read again at every request', async () => {
    const view = await setting('model.api_key', { reference: `env:${ENV_NAME}` });
    expect(view).toMatchObject({ secret: { set: true, source: 'env', reference: `env:${ENV_NAME}` } });
    expect(JSON.stringify(await ok(call('GET', '/agent/settings', tokens.admin)))).not.toContain(SECRETS.env);
    const first = await ask('hello');
    expect(first.answer.state).toBe('idle');
    expect(first.authorization).toBe(`Bearer ${SECRETS.env}`);
    process.env[ENV_NAME] = SECRETS.envRotated;
    expect((await ask('hello again')).authorization).toBe(`Bearer ${SECRETS.envRotated}`);
  });

  it('a file: reference: the model receives Bearer <the file’s content>; a rewritten file is used by the next request', async () => {
    const view = await setting('model.api_key', { reference: `file:${keyFile}` });
    expect(view).toMatchObject({ secret: { set: true, source: 'file', reference: `file:${keyFile}` } });
    const first = await ask('hello');
    expect(first.answer.state).toBe('idle');
    // The trailing newline of a mounted secret file is not part of the key.
    expect(first.authorization).toBe(`Bearer ${SECRETS.file}`);
    writeFileSync(keyFile, `${SECRETS.fileRotated}\n`);
    expect((await ask('hello again')).authorization).toBe(`Bearer ${SECRETS.fileRotated}`);
  });

  // A reference that does not resolve stops the turn before any request (it once went out with the
  // client's placeholder key, `Bearer unset`, and no notice).
  it.each([
    ['a variable that is not set', () => ({ reference: `env:${ENV_NAME}_MISSING` })],
    ['a file that does not exist', () => ({ reference: `file:${path.join(secretDir, 'missing-key')}` })],
  ])(
    'a reference to %s: a clear notice in the conversation naming model.api_key, no request without the key, no 5xx, no hang',
    async (_name, value) => {
      await setting('model.api_key', value());
      const before = fake.requests.length;
      const res = await call('POST', `/agent/conversations/${await converse()}/messages`, tokens.user, { content: 'hello' });
      expect(res.status).toBe(200);
      expect(res.body.state).toBe('failed');
      const notice = res.body.messages.at(-1);
      expect(notice.role).toBe('notice');
      expect(notice.content).toContain('model.api_key');
      expect(fake.requests.length).toBe(before);
    },
  );

  it('secret values appear in no log line, no console or stdout/stderr output, and no row of any table — after refused (401), failed (500) and answered requests', async () => {
    // The encrypted form, refused with an error that echoes the key (as some providers do), then a 500, then an answer.
    await setting('model.api_key', { value: SECRETS.encrypted });
    const echo = (status: number): Step => ({ status, error: `Incorrect API key provided: ${fake.authorizations.at(-1) ?? ''}` });
    /** The next requests answer these steps in turn, then 'answered'. */
    const next = (...steps: Step[]): void => {
      const from = fake.requests.length;
      fake.script((_req, n) => steps[n - from] ?? { text: 'answered' });
    };
    next(echo(401), echo(500));
    const refused = await ask('first');
    expect(refused.authorization).toBe(`Bearer ${SECRETS.encrypted}`);
    expect(refused.answer.messages.at(-1)).toMatchObject({ role: 'notice', meta: { code: 'model_refused' } });
    expect((await ask('second')).answer.messages.at(-1)).toMatchObject({ role: 'notice', meta: { code: 'model_unavailable' } });
    expect((await ask('third')).answer.messages.at(-1)).toMatchObject({ role: 'assistant', content: 'answered' });
    // And by reference, refused and answered.
    await setting('model.api_key', { reference: `file:${keyFile}` });
    next(echo(401));
    expect((await ask('fourth')).authorization).toBe(`Bearer ${SECRETS.fileRotated}`);
    await ask('fifth');
    await setting('model.api_key', { reference: `env:${ENV_NAME}` });
    await ask(`sixth ${MARKER}`);

    // Every settings change reached the audit store (the rows scanned below include them).
    const changes = await pollUntil(
      async () => {
        const { rows } = await db.query(
          `SELECT count(*)::int AS n FROM audit.audit_event WHERE action = 'settings.changed' AND target_id = 'model.api_key'`,
        );
        return rows[0].n >= 5 ? rows[0].n : undefined;
      },
      { what: 'the settings changes in the audit store', timeoutMs: 20_000 },
    );
    expect(changes).toBeGreaterThanOrEqual(5);

    const values = Object.values(SECRETS);
    // The capture is live: the host logged its start, at trace level, through the captured loggers.
    const log = mockLogLines.join('');
    expect(log).toContain('"msg":"starting"');
    expect(mockLogLines.length).toBeGreaterThan(10);
    const leaks: string[] = [];
    for (const value of values) {
      if (log.includes(value)) leaks.push(`log: ${value}`);
      if (written.join('').includes(value)) leaks.push(`stdout/stderr/console: ${value}`);
    }
    // Every row of every table of the host's schemas, as text.
    const { rows: tables } = await db.query<{ schema: string; table: string }>(
      `SELECT table_schema AS schema, table_name AS table FROM information_schema.tables
        WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('pg_catalog', 'information_schema')`,
    );
    const scanned = tables.map((x) => `${x.schema}.${x.table}`);
    expect(scanned).toEqual(expect.arrayContaining(['audit.audit_event', 'audit.outbox', 'agent_gateway.outbox', 'agent_gateway.setting']));
    const tablesContaining = async (value: string): Promise<string[]> => {
      const hits: string[] = [];
      for (const { schema, table } of tables) {
        const q = `SELECT count(*)::int AS n FROM "${schema}"."${table}" t WHERE strpos(t::text, $1) > 0`;
        if ((await db.query(q, [value])).rows[0].n > 0) hits.push(`${schema}.${table}`);
      }
      return hits;
    };
    // The scan is live: a marker the user typed is found where messages are kept.
    expect(await tablesContaining(MARKER)).toContain('agent_gateway.agent_message');
    for (const value of values) for (const hit of await tablesContaining(value)) leaks.push(`${hit}: ${value}`);
    expect(leaks).toEqual([]);
  });
});
