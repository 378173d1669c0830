import { readFileSync } from 'node:fs';
import path from 'node:path';
import { GetPrincipalSnapshot, type BundleChange } from '@custodian/contracts';
import { ConfigError, CustodianException, type Bus } from '@custodian/platform';
import type { INestApplication } from '@nestjs/common';
import { Client } from 'pg';
import type { Logger } from 'pino';
import { BundleService, parseBundle, type Bundle } from '../apps/objects/src/objects.module';

export interface StartupBundle {
  file: string;
  bundle: Bundle;
}

export interface AppliedStartupBundle {
  file: string;
  digest: string;
  changes: BundleChange[];
}

/**
 * Reads and validates CUSTODIAN_BUNDLE (YAML or JSON, against the bundle schema) before anything
 * starts, so an air-gapped install with a broken artifact stops at once with the exact reason.
 */
export function loadStartupBundle(env: Record<string, string | undefined>): StartupBundle | undefined {
  const setting = env.CUSTODIAN_BUNDLE;
  if (!setting) return undefined;
  const file = path.resolve(setting);
  const refuse = (reason: string): never => {
    throw new ConfigError([`CUSTODIAN_BUNDLE=${setting}: ${reason}`]);
  };
  if (!/\.(ya?ml|json)$/i.test(file)) refuse('must name a .yaml, .yml or .json file');
  let text = '';
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    refuse(`cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  try {
    return { file: setting, bundle: parseBundle({ document: text }) };
  } catch (error) {
    if (!(error instanceof CustodianException)) throw error;
    const details = error.details as { issues?: Array<{ path: string; message: string }> } | undefined;
    const issues = [...new Set((details?.issues ?? []).map((i) => `${i.path || '/'} ${i.message}`))];
    return refuse([error.message, ...issues].join('; '));
  }
}

/**
 * Applies the start-up bundle as the installation's first administrator (the bootstrap admin of
 * the first organization). Applying is idempotent by name: a dry run first, and only a bundle that
 * would change something is applied (and audited) — an unchanged file leaves no trace per start.
 */
export async function applyStartupBundle(
  app: INestApplication,
  bus: Bus,
  databaseUrl: string,
  loaded: StartupBundle,
  logger: Logger,
): Promise<AppliedStartupBundle> {
  const admin = await firstAdministrator(databaseUrl);
  if (!admin) throw new ConfigError([`CUSTODIAN_BUNDLE=${loaded.file}: no administrator to apply it as`]);
  const principal = await bus.request(GetPrincipalSnapshot, admin);
  const bundles = app.get(BundleService);
  const planned = await bundles.apply(principal, loaded.bundle, true);
  if (planned.changes.every((c) => c.change === 'unchanged')) {
    logger.info({ file: loaded.file, digest: planned.digest }, 'start-up bundle unchanged');
    return { file: loaded.file, digest: planned.digest, changes: planned.changes };
  }
  const applied = await bundles.apply(principal, loaded.bundle, false);
  const changed = applied.changes.filter((c) => c.change !== 'unchanged');
  logger.info(
    { file: loaded.file, digest: applied.digest, changes: changed.map((c) => `${c.change} ${c.kind} ${c.name}`) },
    'start-up bundle applied',
  );
  return { file: loaded.file, digest: applied.digest, changes: applied.changes };
}

/** The oldest membership of the oldest organization: the administrator the bootstrap created. */
async function firstAdministrator(databaseUrl: string): Promise<{ userId: string; orgId: string } | undefined> {
  const client = new Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const { rows } = await client.query<{ user_id: string; org_id: string }>(
      `SELECT m.user_id, m.org_id FROM identity.membership m JOIN identity.organization o ON o.id = m.org_id
        ORDER BY o.created_at, m.created_at LIMIT 1`,
    );
    return rows[0] ? { userId: rows[0].user_id, orgId: rows[0].org_id } : undefined;
  } finally {
    await client.end();
  }
}
