import { DataSource } from 'typeorm';
import { rotateSettingsKey, SettingsCipher, SETTINGS_SCHEMAS } from '@custodian/platform';

function key(env: NodeJS.ProcessEnv, name: string): Buffer {
  const raw = env[name] ?? '';
  const value = Buffer.from(raw.trim(), 'base64');
  if (value.length !== 32) throw new Error(`${name} must be the 32-byte master key, base64-encoded`);
  return value;
}

/**
 * The settings key rotation: re-seals every encrypted setting — the agent gateway's (model provider
 * keys) and identity's (the OIDC client secret) — from CUSTODIAN_MASTER_KEY_PREVIOUS to
 * CUSTODIAN_MASTER_KEY, in one transaction over both schemas (all or nothing; a rerun skips what is
 * done). DATABASE_URL must be a user that may update both schemas' settings tables (the owner the
 * migrations run as, not one service's role). Operators run it through the CLI, with the service stopped or before
 * starting it with the new key (docs/agent-runtime.md, "Key rotation"):
 *   CUSTODIAN_MASTER_KEY_PREVIOUS=… CUSTODIAN_MASTER_KEY=… DATABASE_URL=… custodian settings rotate-key
 */
export async function runSettingsKeyRotation(env: NodeJS.ProcessEnv): Promise<{ resealed: number; skipped: number }> {
  if (!env.DATABASE_URL) throw new Error('DATABASE_URL is required');
  const previous = new SettingsCipher(key(env, 'CUSTODIAN_MASTER_KEY_PREVIOUS'));
  const current = new SettingsCipher(key(env, 'CUSTODIAN_MASTER_KEY'));
  const ds = new DataSource({
    type: 'postgres',
    url: env.DATABASE_URL,
    entities: [],
    poolSize: 1,
    extra: { application_name: 'custodian-settings-rotate-key' },
  });
  await ds.initialize();
  try {
    return await rotateSettingsKey(ds, previous, current, SETTINGS_SCHEMAS);
  } finally {
    await ds.destroy();
  }
}
