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
 * a rerun skips what is done). Run it with the service stopped or before starting it with the new key:
 *   CUSTODIAN_MASTER_KEY_PREVIOUS=… CUSTODIAN_MASTER_KEY=… DATABASE_URL=… node dist/apps/agent-gateway/runtime/rotate-settings-key.js
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

if (require.main === module) {
  runSettingsKeyRotation(process.env).then(
    (r) => {
      process.stdout.write(`settings re-sealed: ${r.resealed}, already under the new key: ${r.skipped}\n`);
    },
    (error: unknown) => {
      // Only the message: it never holds a key or a value.
      process.stderr.write(`settings key rotation failed: ${error instanceof Error ? error.message : 'unknown error'}\n`);
      process.exitCode = 1;
    },
  );
}
