import { chmod, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import path from 'node:path';

/** What `custodian login` keeps: the server, the tokens, the org. Never a password. */
export interface StoredCredentials {
  url: string;
  accessToken: string;
  refreshToken?: string;
  orgId?: string;
  email?: string;
  /** Epoch milliseconds after which the access token is refreshed first. */
  expiresAt?: number;
}

/** `$XDG_CONFIG_HOME/custodian/credentials`, by default `~/.config/custodian/credentials`. */
export function credentialsFile(env: Record<string, string | undefined>): string {
  const base = env.XDG_CONFIG_HOME || path.join(env.HOME || homedir(), '.config');
  return path.join(base, 'custodian', 'credentials');
}

export async function loadCredentials(env: Record<string, string | undefined>): Promise<StoredCredentials | undefined> {
  const text = await readFile(credentialsFile(env), 'utf8').catch(() => undefined);
  if (!text) return undefined;
  try {
    const value = JSON.parse(text) as StoredCredentials;
    return typeof value.url === 'string' && typeof value.accessToken === 'string' ? value : undefined;
  } catch {
    return undefined;
  }
}

/** Written 0600 in a 0700 directory: only the user reads it. */
export async function saveCredentials(env: Record<string, string | undefined>, value: StoredCredentials): Promise<string> {
  const file = credentialsFile(env);
  await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  await writeFile(file, `${JSON.stringify(value, null, 2)}\n`, { mode: 0o600 });
  // An existing file keeps its old mode on write: set it explicitly.
  await chmod(file, 0o600);
  return file;
}

export async function removeCredentials(env: Record<string, string | undefined>): Promise<void> {
  await rm(credentialsFile(env), { force: true });
}
