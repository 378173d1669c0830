import { createServiceDataSource, rotateSettingsKey, SettingsCipher } from '@custodian/platform';

function key(env: NodeJS.ProcessEnv, name: string): Buffer {
  const raw = env[name] ?? '';
  const value = Buffer.from(raw.trim(), 'base64');
  if (value.length !== 32) throw new Error(`${name} must be the 32-byte master key, base64-encoded`);
  return value;
}

/**
 * The settings key rotation: re-seals every encrypted setting of the agent gateway from
 * CUSTODIAN_MASTER_KEY_PREVIOUS to CUSTODIAN_MASTER_KEY, in one transaction (all or nothing;
 * a rerun skips what is done). Operators run it through the CLI, with the service stopped or before
 * starting it with the new key (docs/agent-runtime.md, "Key rotation"):
 *   CUSTODIAN_MASTER_KEY_PREVIOUS=… CUSTODIAN_MASTER_KEY=… DATABASE_URL=… custodian settings rotate-key
 */
export async function runSettingsKeyRotation(env: NodeJS.ProcessEnv): Promise<{ resealed: number; skipped: number }> {
  if (!env.DATABASE_URL) throw new Error('DATABASE_URL is required');
  const previous = new SettingsCipher(key(env, 'CUSTODIAN_MASTER_KEY_PREVIOUS'));
  const current = new SettingsCipher(key(env, 'CUSTODIAN_MASTER_KEY'));
  const ds = createServiceDataSource({ service: 'agent-gateway', url: env.DATABASE_URL, entities: [], migrations: [], poolSize: 1 });
  await ds.initialize();
  try {
    return await rotateSettingsKey(ds, previous, current);
  } finally {
    await ds.destroy();
  }
}
