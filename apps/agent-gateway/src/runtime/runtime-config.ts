import { ConfigError, type ReferencePolicy } from '@custodian/platform';

/**
 * The agent runtime's process settings, from the environment, validated at boot. Kept beside the
 * runtime rather than in the shared config so the runtime can be read and changed as one piece;
 * per-org settings (provider, egress, retention) live in the settings store instead.
 */
export interface RuntimeConfig {
  /** Where secret references may point (env variable prefix, directories of mounted secrets). */
  readonly references: ReferencePolicy;
  /** Upper bound on every model request, whatever the org's setting says. */
  readonly maxModelTimeoutMs: number;
  /** Conversations one user may have running at once. */
  readonly maxRunningPerUser: number;
  /** How often expired conversations are deleted (0 = never). */
  readonly retentionSweepMs: number;
}

export function loadRuntimeConfig(env: NodeJS.ProcessEnv = process.env): RuntimeConfig {
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
  const envPrefix = env.CUSTODIAN_SECRET_ENV_PREFIX ?? 'CUSTODIAN_SECRET_';
  // An empty or short prefix would let a settings admin name the process's own secrets.
  if (envPrefix !== '' && !/^[A-Z][A-Z0-9_]{3,63}_$/.test(envPrefix))
    problems.push('CUSTODIAN_SECRET_ENV_PREFIX must be like CUSTODIAN_SECRET_ (A-Z, 0-9, _; ends with _)');
  const fileDirs = (env.CUSTODIAN_SECRET_FILE_DIRS ?? '/run/secrets,/var/run/secrets,/vault/secrets')
    .split(',')
    .map((d) => d.trim())
    .filter(Boolean);
  for (const dir of fileDirs)
    if (!dir.startsWith('/') || dir === '/') problems.push('CUSTODIAN_SECRET_FILE_DIRS must list absolute directories other than /');
  const config: RuntimeConfig = {
    references: { envPrefix, fileDirs },
    maxModelTimeoutMs: int('CUSTODIAN_AGENT_MAX_MODEL_TIMEOUT_MS', 300_000, 100, 3_600_000),
    maxRunningPerUser: int('CUSTODIAN_AGENT_MAX_RUNNING_PER_USER', 4, 1, 100),
    retentionSweepMs: int('CUSTODIAN_AGENT_RETENTION_SWEEP_MS', 3_600_000, 0, 86_400_000),
  };
  if (problems.length > 0) throw new ConfigError(problems);
  return config;
}
