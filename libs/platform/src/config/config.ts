import { readFileSync } from 'node:fs';
import path from 'node:path';
import { SERVICE_NAMES, type ServiceName } from '@custodian/contracts';
import { parseProxyList, type ForwardedHeader } from '../http/client-address';

/**
 * Typed configuration, read once from the environment and validated at boot. An invalid value
 * refuses the start with every problem listed; secrets are kept out of `describeConfig()`.
 */
export interface CustodianConfig {
  readonly mode: 'all-in-one' | 'service';
  /** The services this process hosts: all five in all-in-one mode, one otherwise. */
  readonly services: readonly ServiceName[];
  readonly dataDir: string;
  /** Uploaded files (`file` fields): where their content is kept and what is accepted (docs/files.md). */
  readonly files: FilesConfig;
  readonly http: {
    readonly port: number;
    readonly host: string;
    readonly bodyLimitBytes: number;
    readonly shutdownGraceMs: number;
    /** Peers whose forwarding header is believed (CIDRs; default loopback only; docs/deployment.md). */
    readonly trustedProxies: readonly string[];
    /** The header those proxies write: `x-forwarded-for` (default) or RFC 7239 `forwarded`; the other is ignored. */
    readonly forwardedHeader: ForwardedHeader;
    /** Node's server limits: the whole request must arrive within `requestTimeoutMs`, its headers within `headersTimeoutMs`. */
    readonly requestTimeoutMs: number;
    readonly headersTimeoutMs: number;
    /** A handler that has not started its answer by then gets 503 `request_timeout` (0 = no deadline; streams exempt). */
    readonly handlerTimeoutMs: number;
    /** gzip/deflate/br for JSON answers of 1 KiB or more when the client accepts it. */
    readonly compression: boolean;
  };
  /** The general rate limiter (docs/operations.md, Rate limits). */
  readonly rateLimit: {
    readonly enabled: boolean;
    /** Token buckets: `perSecond` refill, `burst` capacity; perSecond 0 turns that limiter off. */
    readonly address: { readonly perSecond: number; readonly burst: number };
    readonly credential: { readonly perSecond: number; readonly burst: number };
    /** Buckets kept per limiter (least recently used dropped first): the memory bound. */
    readonly maxBuckets: number;
    /** Client addresses never limited (CIDRs; default loopback). */
    readonly exempt: readonly string[];
  };
  /** OpenTelemetry: spans are exported over OTLP/HTTP only when an endpoint is configured. */
  readonly tracing: { readonly tracesUrl?: string };
  readonly database: {
    /** External PostgreSQL; absent in all-in-one mode means the embedded one. */
    readonly url?: string;
    readonly embeddedPort: number;
    readonly poolSize: number;
  };
  readonly bus: {
    /** Absent in all-in-one mode means the in-process bus. */
    readonly natsUrl?: string;
    readonly namespace: string;
    readonly requestTimeoutMs: number;
  };
  readonly log: { readonly level: string };
  readonly auth: {
    readonly issuer: string;
    readonly audience: string;
    readonly accessTokenTtlSeconds: number;
    readonly refreshTokenTtlSeconds: number;
    readonly clockToleranceSeconds: number;
    /**
     * How long a resolved principal may be reused for the same credential (0 = ask identity on every
     * request). Entries are dropped at once on revocation and policy-version events (R10).
     */
    readonly principalCacheMs: number;
    /**
     * A refresh token presented again this soon after its rotation gets the successor already issued
     * (racing refreshes of one client), if that successor is still unused; later, reuse revokes the family.
     */
    readonly refreshReuseGraceSeconds: number;
    /**
     * The MCP resource (RFC 8707): the only audience besides `audience` that identity issues, and only
     * to delegated agent tokens; the agent gateway accepts nothing else and the REST API never this.
     */
    readonly mcpResource: string;
  };
  readonly secrets: {
    /** 32-byte key that encrypts signing keys at rest; required where identity runs. */
    readonly masterKey?: Buffer;
    /** Where the master key came from (a variable name or a file path), for error messages. */
    readonly masterKeySource?: string;
  };
  readonly bootstrap: { readonly orgName: string; readonly adminEmail?: string; readonly adminPassword?: string };
  readonly audit: {
    /** How often the audit service signs a checkpoint of every chain head that moved (0 = only on demand). */
    readonly checkpointIntervalMs: number;
    /** A chain that grew by this many events since its newest checkpoint is checkpointed within a second (0 = off). */
    readonly checkpointEveryEvents: number;
    /**
     * Over NATS: outbox relays stop publishing while the audit store's consumer has this many events
     * undelivered or unacknowledged (F5 backpressure; 0 = never pause).
     */
    readonly maxLag: number;
    /**
     * Identical refusals of one credential within this window become one `authz.denied` event with
     * a count (the first is written at once); it is also the window of the refusal budget below.
     */
    readonly denialWindowMs: number;
    /** Refusals per credential per window answered as usual; further ones get 429 and are only counted (0 = no limit). */
    readonly denialBudget: number;
  };
  readonly approvals: {
    /** How long a pending action waits for its reviewers before it expires. */
    readonly ttlSeconds: number;
    /** How often expiry runs and approved actions whose apply did not finish are retried (0 = never). */
    readonly sweepIntervalMs: number;
    /** An approved action untouched this long is assumed orphaned by a crash and applied again. */
    readonly applyRetryAfterMs: number;
  };
  readonly agentGateway: {
    /** Where clients reach this installation (the RFC 9728 metadata and 401 challenges name it). */
    readonly publicUrl: string;
    /** Tool calls per credential per minute; more get a tool error with a retry-after. */
    readonly toolCallsPerMinute: number;
    /** Open MCP sessions per credential; a further initialize is refused with a retry-after. */
    readonly maxSessionsPerCredential: number;
    /** An MCP session unused this long is closed (its end audited). */
    readonly sessionIdleMs: number;
    /** Largest JSON-RPC body accepted at /mcp, and largest tool arguments. */
    readonly maxBodyBytes: number;
    readonly maxArgumentBytes: number;
    /** Rows and bytes a read tool returns at most per call (then `truncated` with a cursor). */
    readonly maxRows: number;
    readonly maxResultBytes: number;
    /** No sessions: every POST is served on its own (any replica can answer; no GET stream, no list_changed, no records-read context). */
    readonly stateless: boolean;
  };
  readonly agentRuntime: {
    /** Where secret settings given by reference may point: an env variable prefix, directories of mounted secrets. */
    readonly references: { readonly envPrefix: string; readonly fileDirs: readonly string[] };
    /** Upper bound on every model request, whatever an org's setting says. */
    readonly maxModelTimeoutMs: number;
    /** How often conversations past their org's retention are deleted (0 = never). */
    readonly retentionSweepMs: number;
  };
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
  }
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];
type Env = Record<string, string | undefined>;

export function loadConfig(env: Env, mode: CustodianConfig['mode'], service?: ServiceName): CustodianConfig {
  const problems: string[] = [];
  const int = (name: string, def: number, min: number, max: number): number => {
    const raw = env[name];
    if (raw === undefined || raw === '') return def;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < min || n > max) {
      problems.push(`${name} must be an integer between ${min} and ${max}`);
      return def;
    }
    return n;
  };
  const rate = (name: string, def: number): number => {
    const raw = env[name];
    if (raw === undefined || raw === '') return def;
    const n = Number(raw);
    if (!Number.isFinite(n) || n < 0 || n > 1_000_000) {
      problems.push(`${name} must be a number between 0 and 1000000 (per second; fractions allowed)`);
      return def;
    }
    return n;
  };
  const url = (name: string, protocols: string[]): string | undefined => {
    const raw = env[name];
    if (raw === undefined || raw === '') return undefined;
    try {
      const u = new URL(raw);
      if (!protocols.includes(u.protocol)) problems.push(`${name} must use ${protocols.join(' or ')}`);
    } catch {
      problems.push(`${name} is not a valid URL`);
    }
    return raw;
  };

  if (mode === 'service' && (!service || !SERVICE_NAMES.includes(service))) {
    problems.push(`unknown service "${String(service)}"`);
  }
  const dataDir = path.resolve(env.CUSTODIAN_DATA_DIR || '.custodian');
  const databaseUrl = url('DATABASE_URL', ['postgres:', 'postgresql:']);
  const natsUrl = url('NATS_URL', ['nats:', 'tls:']);
  if (mode === 'service') {
    if (!databaseUrl) problems.push('DATABASE_URL is required when a service runs on its own');
    if (!natsUrl) problems.push('NATS_URL is required when a service runs on its own');
  }
  const logLevel = env.LOG_LEVEL || 'info';
  if (!LOG_LEVELS.includes(logLevel)) problems.push(`LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}`);
  const namespace = env.CUSTODIAN_BUS_NAMESPACE || 'custodian';
  if (!/^[a-z][a-z0-9_]{0,31}$/.test(namespace)) problems.push('CUSTODIAN_BUS_NAMESPACE must match ^[a-z][a-z0-9_]{0,31}$');

  const services = mode === 'all-in-one' ? SERVICE_NAMES : service ? [service] : [];
  const masterKey = readMasterKey(env, problems);
  const masterKeySource = !masterKey
    ? undefined
    : env.CUSTODIAN_MASTER_KEY
      ? 'CUSTODIAN_MASTER_KEY'
      : `CUSTODIAN_MASTER_KEY_FILE=${String(env.CUSTODIAN_MASTER_KEY_FILE)}`;
  if (mode === 'service' && !masterKey) {
    // Every service keys audit hashes with it (the same value must give the same hash in every
    // process); identity also seals signing keys with it, audit its checkpoint key.
    problems.push('CUSTODIAN_MASTER_KEY or CUSTODIAN_MASTER_KEY_FILE is required');
  }
  const adminEmail = env.CUSTODIAN_ADMIN_EMAIL || undefined;
  if (adminEmail && !/^[^\s@]{1,64}@[^\s@]{1,255}$/.test(adminEmail)) problems.push('CUSTODIAN_ADMIN_EMAIL is not an email address');
  const adminPassword = env.CUSTODIAN_ADMIN_PASSWORD || undefined;
  if (adminPassword !== undefined && (adminPassword.length < 12 || adminPassword.length > 256)) {
    problems.push('CUSTODIAN_ADMIN_PASSWORD must be 12 to 256 characters');
  }

  const port = int('PORT', 3000, 0, 65535);
  const publicUrl = (url('CUSTODIAN_PUBLIC_URL', ['http:', 'https:']) ?? `http://localhost:${port}`).replace(/\/+$/, '');
  const mcpResource = url('CUSTODIAN_MCP_RESOURCE', ['http:', 'https:']) ?? `${publicUrl}/mcp`;
  // One audience for both would let an MCP token call the REST API and a REST token call /mcp.
  if (mcpResource === (env.CUSTODIAN_AUDIENCE || 'urn:custodian:api'))
    problems.push('CUSTODIAN_MCP_RESOURCE must differ from CUSTODIAN_AUDIENCE');
  const secretEnvPrefix = env.CUSTODIAN_SECRET_ENV_PREFIX ?? 'CUSTODIAN_SECRET_';
  // An empty or short prefix would let a settings admin point a secret at the process's own variables.
  if (secretEnvPrefix !== '' && !/^[A-Z][A-Z0-9_]{3,63}_$/.test(secretEnvPrefix))
    problems.push('CUSTODIAN_SECRET_ENV_PREFIX must look like CUSTODIAN_SECRET_ (A-Z, 0-9, _; ending in _)');
  const secretFileDirs = (env.CUSTODIAN_SECRET_FILE_DIRS ?? '/run/secrets,/var/run/secrets,/vault/secrets')
    .split(',')
    .map((d) => d.trim())
    .filter(Boolean);
  if (secretFileDirs.some((d) => !d.startsWith('/') || d === '/'))
    problems.push('CUSTODIAN_SECRET_FILE_DIRS must list absolute directories other than /');
  const forwardedHeader = (env.CUSTODIAN_FORWARDED_HEADER || 'x-forwarded-for').toLowerCase();
  if (forwardedHeader !== 'x-forwarded-for' && forwardedHeader !== 'forwarded')
    problems.push('CUSTODIAN_FORWARDED_HEADER must be x-forwarded-for or forwarded');
  const trustedProxies = parseProxyList(env.CUSTODIAN_TRUSTED_PROXIES ?? 'loopback');
  problems.push(...trustedProxies.problems);
  const rateLimitExempt = parseProxyList(env.CUSTODIAN_RATE_LIMIT_EXEMPT ?? 'loopback', 'CUSTODIAN_RATE_LIMIT_EXEMPT');
  problems.push(...rateLimitExempt.problems);
  const rateLimitEnabled = env.CUSTODIAN_RATE_LIMIT_ENABLED || 'true';
  if (rateLimitEnabled !== 'true' && rateLimitEnabled !== 'false') problems.push('CUSTODIAN_RATE_LIMIT_ENABLED must be true or false');
  const mcpStateless = env.CUSTODIAN_MCP_STATELESS || 'false';
  if (mcpStateless !== 'true' && mcpStateless !== 'false') problems.push('CUSTODIAN_MCP_STATELESS must be true or false');
  const compression = env.CUSTODIAN_HTTP_COMPRESSION || 'true';
  if (compression !== 'true' && compression !== 'false') problems.push('CUSTODIAN_HTTP_COMPRESSION must be true or false');
  const headersTimeoutMs = int('CUSTODIAN_HTTP_HEADERS_TIMEOUT_MS', 20_000, 1000, 600_000);
  const requestTimeoutMs = int('CUSTODIAN_HTTP_REQUEST_TIMEOUT_MS', 120_000, 1000, 3_600_000);
  if (requestTimeoutMs < headersTimeoutMs)
    problems.push('CUSTODIAN_HTTP_REQUEST_TIMEOUT_MS must not be shorter than CUSTODIAN_HTTP_HEADERS_TIMEOUT_MS');
  // OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is the traces URL itself; OTEL_EXPORTER_OTLP_ENDPOINT a base (+ /v1/traces).
  const tracesEndpoint = url('OTEL_EXPORTER_OTLP_TRACES_ENDPOINT', ['http:', 'https:']);
  const otlpBase = url('OTEL_EXPORTER_OTLP_ENDPOINT', ['http:', 'https:']);
  const tracesUrl = tracesEndpoint ?? (otlpBase ? `${otlpBase.replace(/\/+$/, '')}/v1/traces` : undefined);
  const config: CustodianConfig = {
    mode,
    services,
    dataDir,
    files: loadFilesConfig(env, dataDir, problems),
    http: {
      port,
      host: env.HOST || '0.0.0.0',
      bodyLimitBytes: int('CUSTODIAN_BODY_LIMIT_BYTES', 1_048_576, 1024, 16 * 1_048_576),
      shutdownGraceMs: int('CUSTODIAN_SHUTDOWN_GRACE_MS', 10_000, 0, 120_000),
      trustedProxies: trustedProxies.cidrs,
      forwardedHeader: forwardedHeader === 'forwarded' ? 'forwarded' : 'x-forwarded-for',
      requestTimeoutMs,
      headersTimeoutMs,
      handlerTimeoutMs: int('CUSTODIAN_HTTP_HANDLER_TIMEOUT_MS', 30_000, 0, 3_600_000),
      compression: compression !== 'false',
    },
    rateLimit: {
      enabled: rateLimitEnabled !== 'false',
      address: {
        perSecond: rate('CUSTODIAN_RATE_LIMIT_ADDRESS_PER_SECOND', 100),
        burst: int('CUSTODIAN_RATE_LIMIT_ADDRESS_BURST', 1000, 1, 10_000_000),
      },
      credential: {
        perSecond: rate('CUSTODIAN_RATE_LIMIT_BEARER_PER_SECOND', 50),
        burst: int('CUSTODIAN_RATE_LIMIT_BEARER_BURST', 500, 1, 10_000_000),
      },
      maxBuckets: int('CUSTODIAN_RATE_LIMIT_MAX_BUCKETS', 100_000, 100, 10_000_000),
      exempt: rateLimitExempt.cidrs,
    },
    tracing: { ...(tracesUrl ? { tracesUrl } : {}) },
    database: {
      url: databaseUrl,
      embeddedPort: int('CUSTODIAN_PG_PORT', 5488, 1, 65535),
      poolSize: int('CUSTODIAN_DB_POOL_SIZE', 10, 1, 200),
    },
    bus: { natsUrl, namespace, requestTimeoutMs: int('CUSTODIAN_BUS_TIMEOUT_MS', 3000, 50, 60_000) },
    log: { level: logLevel },
    auth: {
      issuer: env.CUSTODIAN_ISSUER || 'urn:custodian:identity',
      audience: env.CUSTODIAN_AUDIENCE || 'urn:custodian:api',
      accessTokenTtlSeconds: int('CUSTODIAN_ACCESS_TOKEN_TTL', 300, 30, 3600),
      refreshTokenTtlSeconds: int('CUSTODIAN_REFRESH_TOKEN_TTL', 1_209_600, 300, 7_776_000),
      clockToleranceSeconds: int('CUSTODIAN_CLOCK_TOLERANCE', 30, 0, 300),
      principalCacheMs: int('CUSTODIAN_PRINCIPAL_CACHE_MS', 5000, 0, 60_000),
      refreshReuseGraceSeconds: int('CUSTODIAN_REFRESH_REUSE_GRACE', 10, 0, 60),
      mcpResource,
    },
    secrets: { masterKey, masterKeySource },
    bootstrap: { orgName: env.CUSTODIAN_ORG_NAME || 'Default', adminEmail, adminPassword },
    audit: {
      checkpointIntervalMs: int('CUSTODIAN_AUDIT_CHECKPOINT_INTERVAL_MS', 60_000, 0, 86_400_000),
      checkpointEveryEvents: int('CUSTODIAN_AUDIT_CHECKPOINT_EVERY_EVENTS', 1000, 0, 10_000_000),
      maxLag: int('CUSTODIAN_AUDIT_MAX_LAG', 50_000, 0, 100_000_000),
      denialWindowMs: int('CUSTODIAN_AUDIT_DENIAL_WINDOW_MS', 10_000, 10, 3_600_000),
      denialBudget: int('CUSTODIAN_AUDIT_DENIAL_BUDGET', 100, 0, 1_000_000),
    },
    approvals: {
      ttlSeconds: int('CUSTODIAN_APPROVALS_TTL_SECONDS', 7 * 86_400, 1, 90 * 86_400),
      sweepIntervalMs: int('CUSTODIAN_APPROVALS_SWEEP_MS', 5000, 0, 3_600_000),
      applyRetryAfterMs: int('CUSTODIAN_APPROVALS_APPLY_RETRY_MS', 30_000, 0, 3_600_000),
    },
    agentGateway: {
      publicUrl,
      toolCallsPerMinute: int('CUSTODIAN_MCP_TOOL_CALLS_PER_MINUTE', 120, 1, 100_000),
      maxSessionsPerCredential: int('CUSTODIAN_MCP_MAX_SESSIONS', 10, 1, 10_000),
      sessionIdleMs: int('CUSTODIAN_MCP_SESSION_IDLE_MS', 30 * 60_000, 1000, 86_400_000),
      maxBodyBytes: int('CUSTODIAN_MCP_MAX_BODY_BYTES', 262_144, 1024, 16 * 1_048_576),
      maxArgumentBytes: int('CUSTODIAN_MCP_MAX_ARGUMENT_BYTES', 65_536, 256, 16 * 1_048_576),
      maxRows: int('CUSTODIAN_MCP_MAX_ROWS', 50, 1, 200),
      maxResultBytes: int('CUSTODIAN_MCP_MAX_RESULT_BYTES', 65_536, 1024, 16 * 1_048_576),
      stateless: mcpStateless === 'true',
    },
    agentRuntime: {
      references: { envPrefix: secretEnvPrefix, fileDirs: secretFileDirs },
      maxModelTimeoutMs: int('CUSTODIAN_AGENT_MAX_MODEL_TIMEOUT_MS', 300_000, 100, 3_600_000),
      retentionSweepMs: int('CUSTODIAN_AGENT_RETENTION_SWEEP_MS', 3_600_000, 0, 86_400_000),
    },
  };
  if (problems.length > 0) throw new ConfigError(problems);
  return config;
}

function readMasterKey(env: Env, problems: string[]): Buffer | undefined {
  let raw = env.CUSTODIAN_MASTER_KEY;
  if (!raw && env.CUSTODIAN_MASTER_KEY_FILE) {
    try {
      raw = readFileSync(env.CUSTODIAN_MASTER_KEY_FILE, 'utf8').trim();
    } catch {
      problems.push('CUSTODIAN_MASTER_KEY_FILE cannot be read');
      return undefined;
    }
  }
  if (!raw) return undefined;
  const key = Buffer.from(raw, 'base64');
  if (key.length !== 32) {
    problems.push('the master key must be 32 bytes, base64-encoded');
    return undefined;
  }
  return key;
}

/** What may be logged about the configuration: secrets replaced, credentials stripped from URLs. */
export function describeConfig(config: CustodianConfig): Record<string, unknown> {
  const stripCredentials = (u?: string): string | undefined => {
    if (!u) return u;
    const parsed = new URL(u);
    if (parsed.password) parsed.password = '***';
    // libpq and pg also take the password from the query string.
    if (parsed.searchParams.has('password')) parsed.searchParams.set('password', '***');
    return parsed.toString();
  };
  return {
    mode: config.mode,
    services: config.services,
    dataDir: config.dataDir,
    // Credentials never enter this section: the S3 client takes them from the AWS environment.
    files: config.files,
    http: config.http,
    database: { ...config.database, url: config.database.url ? stripCredentials(config.database.url) : 'embedded' },
    bus: { ...config.bus, natsUrl: config.bus.natsUrl ? stripCredentials(config.bus.natsUrl) : 'in-process' },
    log: config.log,
    rateLimit: config.rateLimit,
    tracing: { tracesUrl: config.tracing.tracesUrl ? stripCredentials(config.tracing.tracesUrl) : 'off' },
    auth: config.auth,
    audit: config.audit,
    agentGateway: config.agentGateway,
    secrets: { masterKey: config.secrets.masterKey ? '***' : 'unset' },
    bootstrap: {
      orgName: config.bootstrap.orgName,
      adminEmail: config.bootstrap.adminEmail,
      adminPassword: config.bootstrap.adminPassword ? '***' : 'generated',
    },
  };
}

export interface FilesConfig {
  /** `local` (default): under `dir`; `s3`: any S3-compatible store (AWS S3, Cloudflare R2, MinIO). */
  readonly driver: 'local' | 's3';
  /** Local driver's root (default `<dataDir>/files`). */
  readonly dir: string;
  /** Largest accepted upload in bytes. */
  readonly maxBytes: number;
  /** Accepted content types (`type/subtype` or `type/*`), lower case. */
  readonly allowedContentTypes: readonly string[];
  readonly s3: {
    readonly bucket?: string;
    /** Custom endpoint (R2, MinIO, …); absent means AWS S3 of `region`. */
    readonly endpoint?: string;
    readonly region: string;
    readonly forcePathStyle: boolean;
    /** Passed through as `ServerSideEncryption` (e.g. `AES256`, `aws:kms`). */
    readonly sse?: 'AES256' | 'aws:kms' | 'aws:kms:dsse';
    /** Passed through as `SSEKMSKeyId` (only with an `aws:kms*` sse). */
    readonly kmsKeyId?: string;
  };
}

const DEFAULT_FILE_TYPES = 'application/pdf,image/png,image/jpeg,image/gif,image/webp,text/plain,text/csv,application/octet-stream';
const CONTENT_TYPE = /^[a-z0-9][a-z0-9!#$&^_.+-]{0,63}\/([a-z0-9][a-z0-9!#$&^_.+-]{0,63}|\*)$/;

function loadFilesConfig(env: Env, dataDir: string, problems: string[]): FilesConfig {
  const driver = env.CUSTODIAN_FILES_DRIVER || 'local';
  if (driver !== 'local' && driver !== 's3') problems.push('CUSTODIAN_FILES_DRIVER must be local or s3');
  const rawMax = env.CUSTODIAN_FILES_MAX_BYTES;
  let maxBytes = 10 * 1_048_576;
  if (rawMax !== undefined && rawMax !== '') {
    const n = Number(rawMax);
    // 5 GiB is the largest single PUT S3 accepts.
    if (!Number.isInteger(n) || n < 1 || n > 5 * 1024 ** 3)
      problems.push('CUSTODIAN_FILES_MAX_BYTES must be an integer between 1 and 5368709120');
    else maxBytes = n;
  }
  const allowedContentTypes = (env.CUSTODIAN_FILES_ALLOWED_TYPES || DEFAULT_FILE_TYPES)
    .split(',')
    .map((t) => t.trim().toLowerCase())
    .filter((t) => t.length > 0);
  for (const t of allowedContentTypes) {
    if (!CONTENT_TYPE.test(t)) problems.push(`CUSTODIAN_FILES_ALLOWED_TYPES: "${t.slice(0, 64)}" is not a content type`);
    // The JSON body parser reads such bodies before the upload route could stream them.
    else if (t === 'application/*' || t === 'application/json' || t.endsWith('+json'))
      problems.push('CUSTODIAN_FILES_ALLOWED_TYPES cannot accept JSON content types (upload JSON as application/octet-stream)');
  }
  const sse = env.CUSTODIAN_FILES_S3_SSE || undefined;
  if (sse !== undefined && sse !== 'AES256' && sse !== 'aws:kms' && sse !== 'aws:kms:dsse')
    problems.push('CUSTODIAN_FILES_S3_SSE must be AES256, aws:kms or aws:kms:dsse');
  const kmsKeyId = env.CUSTODIAN_FILES_S3_KMS_KEY_ID || undefined;
  if (kmsKeyId !== undefined && !sse?.startsWith('aws:kms'))
    problems.push('CUSTODIAN_FILES_S3_KMS_KEY_ID needs CUSTODIAN_FILES_S3_SSE=aws:kms');
  const bucket = env.CUSTODIAN_FILES_S3_BUCKET || undefined;
  if (driver === 's3' && !bucket) problems.push('CUSTODIAN_FILES_S3_BUCKET is required with CUSTODIAN_FILES_DRIVER=s3');
  const endpoint = env.CUSTODIAN_FILES_S3_ENDPOINT || undefined;
  if (endpoint !== undefined) {
    try {
      const u = new URL(endpoint);
      if (u.protocol !== 'https:' && u.protocol !== 'http:') problems.push('CUSTODIAN_FILES_S3_ENDPOINT must use http: or https:');
      if (u.username || u.password) problems.push('CUSTODIAN_FILES_S3_ENDPOINT must not carry credentials');
    } catch {
      problems.push('CUSTODIAN_FILES_S3_ENDPOINT is not a valid URL');
    }
  }
  const forcePathStyle = env.CUSTODIAN_FILES_S3_FORCE_PATH_STYLE || 'false';
  if (forcePathStyle !== 'true' && forcePathStyle !== 'false') problems.push('CUSTODIAN_FILES_S3_FORCE_PATH_STYLE must be true or false');
  return {
    driver: driver === 's3' ? 's3' : 'local',
    dir: path.resolve(env.CUSTODIAN_FILES_DIR || path.join(dataDir, 'files')),
    maxBytes,
    allowedContentTypes,
    s3: {
      ...(bucket ? { bucket } : {}),
      ...(endpoint ? { endpoint } : {}),
      region: env.CUSTODIAN_FILES_S3_REGION || env.AWS_REGION || 'us-east-1',
      forcePathStyle: forcePathStyle === 'true',
      ...(sse ? { sse: sse as NonNullable<FilesConfig['s3']['sse']> } : {}),
      ...(kmsKeyId ? { kmsKeyId } : {}),
    },
  };
}
