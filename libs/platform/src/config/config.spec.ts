import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { SERVICE_NAMES } from '@custodian/contracts';
import { ConfigError, describeConfig, loadConfig } from './config';

// Config is validated at boot (STYLE #4): every problem is listed at once, secrets never logged.

const MASTER_KEY = randomBytes(32);
const MASTER_KEY_B64 = MASTER_KEY.toString('base64');
const BARE_SERVICE_ENV = { DATABASE_URL: 'postgres://custodian@127.0.0.1:5432/custodian', NATS_URL: 'nats://127.0.0.1:4222' };
const SERVICE_ENV = { ...BARE_SERVICE_ENV, CUSTODIAN_MASTER_KEY: Buffer.alloc(32, 7).toString('base64') };

function configError(run: () => unknown): ConfigError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

describe('loadConfig', () => {
  it('has working defaults in all-in-one mode', () => {
    const config = loadConfig({}, 'all-in-one');
    expect(config).toMatchObject({
      mode: 'all-in-one',
      services: [...SERVICE_NAMES],
      dataDir: path.resolve('.custodian'),
      http: { port: 3000, host: '0.0.0.0', bodyLimitBytes: 1_048_576, shutdownGraceMs: 10_000 },
      database: { url: undefined, embeddedPort: 5488, poolSize: 10 },
      bus: { natsUrl: undefined, namespace: 'custodian', requestTimeoutMs: 3000 },
      log: { level: 'info' },
      auth: {
        issuer: 'urn:custodian:identity',
        audience: 'urn:custodian:api',
        accessTokenTtlSeconds: 300,
        refreshTokenTtlSeconds: 1_209_600,
        clockToleranceSeconds: 30,
      },
      secrets: { masterKey: undefined },
      bootstrap: { orgName: 'Default', adminEmail: undefined, adminPassword: undefined },
    });
  });

  it('reads overrides', () => {
    const config = loadConfig(
      { PORT: '8080', LOG_LEVEL: 'debug', CUSTODIAN_CLOCK_TOLERANCE: '0', CUSTODIAN_MASTER_KEY: MASTER_KEY_B64 },
      'all-in-one',
    );
    expect(config.http.port).toBe(8080);
    expect(config.log.level).toBe('debug');
    expect(config.auth.clockToleranceSeconds).toBe(0);
    expect(config.secrets.masterKey?.equals(MASTER_KEY)).toBe(true);
  });

  it.each([['abc'], ['70000'], ['-1'], ['80.5']])('refuses PORT=%s with the problem listed', (port) => {
    const error = configError(() => loadConfig({ PORT: port }, 'all-in-one'));
    expect(error.problems).toEqual(['PORT must be an integer between 0 and 65535']);
    expect(error.message).toContain('PORT must be an integer');
  });

  it('requires DATABASE_URL and NATS_URL in service mode, naming both', () => {
    const error = configError(() => loadConfig({ CUSTODIAN_MASTER_KEY: MASTER_KEY_B64 }, 'service', 'objects'));
    expect(error.problems).toEqual(expect.arrayContaining([expect.stringContaining('DATABASE_URL'), expect.stringContaining('NATS_URL')]));
    expect(error.problems).toHaveLength(2);
  });

  it('loads a single service with its dependencies', () => {
    const config = loadConfig(SERVICE_ENV, 'service', 'audit');
    expect(config.services).toEqual(['audit']);
    expect(config.database.url).toBe(SERVICE_ENV.DATABASE_URL);
  });

  it('refuses an unknown service name', () => {
    const error = configError(() => loadConfig(SERVICE_ENV, 'service', 'billing' as never));
    expect(error.problems).toEqual([expect.stringContaining('unknown service')]);
  });

  it.each(SERVICE_NAMES)('requires a master key for the %s service (audit hashes must agree across processes)', (service) => {
    const error = configError(() => loadConfig(BARE_SERVICE_ENV, 'service', service));
    expect(error.problems).toEqual([expect.stringContaining('CUSTODIAN_MASTER_KEY')]);
    expect(loadConfig({ ...BARE_SERVICE_ENV, CUSTODIAN_MASTER_KEY: MASTER_KEY_B64 }, 'service', service).secrets.masterKey).toHaveLength(
      32,
    );
  });

  it.each([
    ['16 bytes', randomBytes(16).toString('base64')],
    ['33 bytes', randomBytes(33).toString('base64')],
    ['hex instead of base64', randomBytes(32).toString('hex')],
  ])('refuses a master key of %s', (_what, value) => {
    const error = configError(() => loadConfig({ CUSTODIAN_MASTER_KEY: value }, 'all-in-one'));
    expect(error.problems).toEqual(['the master key must be 32 bytes, base64-encoded']);
    expect(error.message).not.toContain(value);
  });

  describe('CUSTODIAN_MASTER_KEY_FILE', () => {
    let dir: string;
    beforeEach(() => {
      dir = mkdtempSync(path.join(tmpdir(), 'custodian-config-'));
    });
    afterEach(() => {
      rmSync(dir, { recursive: true, force: true });
    });

    it('reads the key from a file (trailing newline allowed)', () => {
      const file = path.join(dir, 'master.key');
      writeFileSync(file, `${MASTER_KEY_B64}\n`, { mode: 0o600 });
      const config = loadConfig({ ...BARE_SERVICE_ENV, CUSTODIAN_MASTER_KEY_FILE: file }, 'service', 'identity');
      expect(config.secrets.masterKey?.equals(MASTER_KEY)).toBe(true);
    });

    it('refuses a file that cannot be read', () => {
      const error = configError(() => loadConfig({ CUSTODIAN_MASTER_KEY_FILE: path.join(dir, 'missing.key') }, 'all-in-one'));
      expect(error.problems).toEqual(['CUSTODIAN_MASTER_KEY_FILE cannot be read']);
    });

    it('refuses a file holding a key of the wrong size', () => {
      const file = path.join(dir, 'short.key');
      writeFileSync(file, randomBytes(8).toString('base64'));
      const error = configError(() => loadConfig({ CUSTODIAN_MASTER_KEY_FILE: file }, 'all-in-one'));
      expect(error.problems).toEqual(['the master key must be 32 bytes, base64-encoded']);
    });
  });

  it.each([['http://127.0.0.1:4222'], ['redis://127.0.0.1'], ['not a url']])('refuses NATS_URL=%s', (natsUrl) => {
    const error = configError(() => loadConfig({ ...SERVICE_ENV, NATS_URL: natsUrl }, 'service', 'audit'));
    expect(error.problems).toEqual([expect.stringContaining('NATS_URL')]);
  });

  it('refuses a DATABASE_URL that is not PostgreSQL', () => {
    const error = configError(() => loadConfig({ ...SERVICE_ENV, DATABASE_URL: 'mysql://root@127.0.0.1/db' }, 'service', 'audit'));
    expect(error.problems).toEqual([expect.stringContaining('DATABASE_URL')]);
  });

  it.each([['verbose'], ['INFO'], ['info; rm -rf /']])('refuses LOG_LEVEL=%s', (level) => {
    const error = configError(() => loadConfig({ LOG_LEVEL: level }, 'all-in-one'));
    expect(error.problems).toEqual([expect.stringContaining('LOG_LEVEL must be one of')]);
  });

  it('refuses an admin password shorter than 12 characters and accepts 12', () => {
    const error = configError(() => loadConfig({ CUSTODIAN_ADMIN_PASSWORD: 'short-pass1' }, 'all-in-one'));
    expect(error.problems).toEqual(['CUSTODIAN_ADMIN_PASSWORD must be 12 to 256 characters']);
    expect(error.message).not.toContain('short-pass1');
    expect(loadConfig({ CUSTODIAN_ADMIN_PASSWORD: 'twelve-chars' }, 'all-in-one').bootstrap.adminPassword).toBe('twelve-chars');
  });

  it('reports several problems together', () => {
    const error = configError(() =>
      loadConfig(
        { PORT: 'abc', LOG_LEVEL: 'loud', NATS_URL: 'http://x', CUSTODIAN_ADMIN_PASSWORD: 'x', CUSTODIAN_BUS_NAMESPACE: 'Bad-NS' },
        'service',
        'identity',
      ),
    );
    expect(error.problems).toEqual(
      expect.arrayContaining([
        expect.stringContaining('PORT'),
        expect.stringContaining('LOG_LEVEL'),
        expect.stringContaining('NATS_URL must use'),
        expect.stringContaining('DATABASE_URL is required'),
        expect.stringContaining('CUSTODIAN_MASTER_KEY'),
        expect.stringContaining('CUSTODIAN_ADMIN_PASSWORD'),
        expect.stringContaining('CUSTODIAN_BUS_NAMESPACE'),
      ]),
    );
    expect(error.problems).toHaveLength(7);
    for (const problem of error.problems) expect(error.message).toContain(problem);
  });
});

describe('describeConfig', () => {
  it('never contains the master key, the admin password or a URL password', () => {
    const dbPassword = 'db-pa55word-S3CRET';
    const natsPassword = 'nats-pa55word-S3CRET';
    const adminPassword = 'admin-password-S3CRET';
    const config = loadConfig(
      {
        CUSTODIAN_MASTER_KEY: MASTER_KEY_B64,
        CUSTODIAN_ADMIN_PASSWORD: adminPassword,
        CUSTODIAN_ADMIN_EMAIL: 'admin@example.com',
        DATABASE_URL: `postgres://custodian:${dbPassword}@127.0.0.1:5432/custodian`,
        NATS_URL: `nats://svc:${natsPassword}@127.0.0.1:4222`,
      },
      'service',
      'identity',
    );
    const described = JSON.stringify(describeConfig(config));
    for (const secret of [
      MASTER_KEY_B64,
      MASTER_KEY.toString('hex'),
      MASTER_KEY.toString('base64url'),
      adminPassword,
      dbPassword,
      natsPassword,
    ]) {
      expect(described).not.toContain(secret);
    }
    // The non-secret parts stay useful for operators.
    expect(described).toContain('127.0.0.1:5432');
    expect(described).toContain('admin@example.com');
  });

  it('masks a password given as a query parameter (pg honours ?password=)', () => {
    const secret = 'query-pa55word-S3CRET';
    const config = loadConfig(
      { DATABASE_URL: `postgres://custodian@127.0.0.1:5432/custodian?sslmode=disable&password=${secret}` },
      'all-in-one',
    );
    const described = JSON.stringify(describeConfig(config));
    expect(described).not.toContain(secret);
    expect(described).toContain('sslmode=disable');
  });

  it('names the embedded database and the in-process bus in all-in-one mode', () => {
    const described = describeConfig(loadConfig({}, 'all-in-one'));
    expect(described).toMatchObject({ database: { url: 'embedded' }, bus: { natsUrl: 'in-process' }, secrets: { masterKey: 'unset' } });
  });
});
