import { generateKeyPairSync, randomUUID, type KeyObject } from 'node:crypto';
import type { DynamicModule, Type } from '@nestjs/common';
import {
  ErrorCode,
  GetAuditVisibility,
  GetJwks,
  type AuditEvent,
  GetPrincipalSnapshot,
  PrincipalSnapshotSchema,
  type PrincipalSnapshot,
  type ServiceName,
} from '@custodian/contracts';
import { CustodianException, InProcessBus, loadConfig, uuidv7, startHost, type Bus, type RunningHost } from '@custodian/platform';
import { SignJWT, exportJWK } from 'jose';
import pino from 'pino';
import { AuditModule } from '../../apps/audit/src/audit.module';

export interface AuditTestUser {
  userId: string;
  orgId: string;
  capabilities: string[];
}

export interface AuditHost {
  host: RunningHost;
  bus: Bus;
  /** A signed access token for a user the fake identity knows. */
  tokenFor(user: AuditTestUser): Promise<string>;
  stop(): Promise<void>;
}

const ISSUER = 'urn:custodian:identity';
const AUDIENCE = 'urn:custodian:api';

/**
 * The audit service alone on a real database, with a stand-in identity on the bus (JWKS and
 * principal snapshots for the users a test declares). The audit suites then do not depend on the
 * identity service's state, and can run the audit module under any bus.
 */
export async function startAuditHost(
  databaseUrl: string,
  opts: {
    bus?: Bus;
    env?: Record<string, string>;
    masterKey?: Buffer | null;
    /** More service modules to host next to audit (listed in `services`, audit first). */
    modules?: Array<Type<unknown> | DynamicModule>;
    services?: ServiceName[];
    /**
     * The objects service's answer to "what may this reader see of the records events name": by
     * default a stand-in that lets every reader see everything; `none` leaves it unanswered.
     */
    visibility?: 'all' | 'none';
  } = {},
): Promise<AuditHost> {
  const logger = pino({ level: process.env.AUDIT_TEST_LOG ?? 'silent' });
  const bus = opts.bus ?? new InProcessBus(logger, { retryBaseMs: 5 });
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const kid = 'audit-test-key';
  const jwk = await exportJWK(publicKey);
  const users = new Map<string, AuditTestUser>();
  await bus.handle(GetJwks, async () => ({ keys: [{ kty: jwk.kty!, crv: jwk.crv, x: jwk.x, kid, alg: 'EdDSA', use: 'sig' as const }] }));
  await bus.handle(GetPrincipalSnapshot, async (req) => {
    const user = users.get(req.userId);
    if (!user || user.orgId !== req.orgId) throw new CustodianException(ErrorCode.NotFound, 'unknown user');
    const candidate: Record<string, unknown> = {
      userId: user.userId,
      orgId: user.orgId,
      email: `${user.userId.slice(0, 8)}@test.local`,
      capabilities: user.capabilities,
      roleId: null,
      ancestorRoleIds: [],
      groupIds: [],
      policyVersion: 1,
      permissionSets: [{ name: 'audit-test', systemCapabilities: user.capabilities }],
    };
    // Only the fields the (evolving) snapshot schema has.
    const known = Object.keys(PrincipalSnapshotSchema.properties);
    return Object.fromEntries(Object.entries(candidate).filter(([k]) => known.includes(k))) as PrincipalSnapshot;
  });
  if (opts.visibility !== 'none')
    await bus.handle(GetAuditVisibility, async (req) => ({
      unrestricted: true,
      objects: Object.fromEntries(req.objects.map((o) => [o, { allRecords: true, readableFields: [] }])),
      readable: [],
    }));
  const config = loadConfig(
    {
      PORT: '0',
      HOST: '127.0.0.1',
      LOG_LEVEL: 'silent',
      DATABASE_URL: databaseUrl,
      CUSTODIAN_SHUTDOWN_GRACE_MS: '1000',
      CUSTODIAN_AUDIT_CHECKPOINT_INTERVAL_MS: '0',
      ...opts.env,
    },
    'all-in-one',
  );
  const host = await startHost({
    config: {
      ...config,
      services: opts.services ?? ['audit'],
      secrets: { masterKey: opts.masterKey === null ? undefined : (opts.masterKey ?? Buffer.alloc(32, 7)) },
    },
    logger,
    bus,
    databaseUrl,
    modules: [AuditModule, ...(opts.modules ?? [])],
  });
  return {
    host,
    bus,
    tokenFor: (user) => {
      users.set(user.userId, user);
      return mint(privateKey, kid, user);
    },
    stop: () => host.stop(),
  };
}

function mint(key: KeyObject, kid: string, user: AuditTestUser): Promise<string> {
  return new SignJWT({ org: user.orgId, sid: randomUUID() })
    .setProtectedHeader({ alg: 'EdDSA', kid, typ: 'at+jwt' })
    .setIssuer(ISSUER)
    .setAudience(AUDIENCE)
    .setSubject(user.userId)
    .setIssuedAt()
    .setExpirationTime('5m')
    .sign(key);
}

/** A valid audit event of `orgId` with fresh ids. */
export function auditEvent(orgId: string | null, overrides: Partial<AuditEvent> = {}): AuditEvent {
  return {
    id: uuidv7(),
    orgId,
    occurredAt: new Date().toISOString(),
    service: 'objects',
    action: 'record.updated',
    outcome: 'success',
    actor: { userId: randomUUID() },
    target: { type: 'account', id: randomUUID() },
    details: { changed: ['name'], n: 1.5 },
    ...overrides,
  };
}
