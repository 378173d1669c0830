import { readFile, realpath } from 'node:fs/promises';
import path from 'node:path';

/** Where a secret given by reference may be read from. */
export interface ReferencePolicy {
  /** Environment variables a reference may name must start with this (so `env:` cannot read the process's own secrets). */
  readonly envPrefix: string;
  /** Directories a `file:` reference may point into (after symlinks are resolved). */
  readonly fileDirs: readonly string[];
}

export type SecretReference = { kind: 'env'; name: string } | { kind: 'file'; path: string };

const ENV_NAME = /^[A-Z_][A-Z0-9_]{0,127}$/;
const MAX_SECRET_BYTES = 64 * 1024;

/** The reference, or a sentence saying why it is not one this installation accepts. */
export function parseReference(raw: string, policy: ReferencePolicy): SecretReference | string {
  if (raw.startsWith('env:')) {
    const name = raw.slice(4);
    if (!ENV_NAME.test(name)) return 'env: must name an environment variable (A-Z, 0-9, _)';
    if (!policy.envPrefix || !name.startsWith(policy.envPrefix))
      return `env: references must name a variable starting with ${policy.envPrefix || '(none allowed)'}`;
    return { kind: 'env', name };
  }
  if (raw.startsWith('file:')) {
    const file = raw.slice(5);
    if (!path.isAbsolute(file) || file.includes('\u0000') || path.normalize(file) !== file)
      return 'file: must be an absolute, normalised path';
    if (!policy.fileDirs.some((dir) => within(dir, file)))
      return `file: references must point into ${policy.fileDirs.join(', ') || '(no directory allowed)'}`;
    return { kind: 'file', path: file };
  }
  return 'a reference is env:NAME or file:/path';
}

function within(dir: string, file: string): boolean {
  const rel = path.relative(dir, file);
  return rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel);
}

/**
 * The secret a reference names, read now (Kubernetes secret mounts and Vault agent rewrite files in
 * place). A file is re-checked after symlinks resolve, so a link cannot lead out of the allowed
 * directories. Undefined when the variable or file is missing.
 */
export async function resolveReference(
  ref: SecretReference,
  policy: ReferencePolicy,
  env: NodeJS.ProcessEnv = process.env,
): Promise<string | undefined> {
  if (ref.kind === 'env') {
    if (!ref.name.startsWith(policy.envPrefix)) return undefined;
    return env[ref.name];
  }
  let real: string;
  try {
    real = await realpath(ref.path);
  } catch {
    return undefined;
  }
  const dirs = await Promise.all(policy.fileDirs.map((d) => realpath(d).catch(() => d)));
  if (!dirs.some((dir) => within(dir, real))) return undefined;
  const content = await readFile(real);
  if (content.length > MAX_SECRET_BYTES) return undefined;
  return content.toString('utf8').replace(/\r?\n$/, '');
}
