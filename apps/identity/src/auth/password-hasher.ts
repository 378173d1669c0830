import { Algorithm, hash, verify } from '@node-rs/argon2';

// OWASP-recommended argon2id parameters (19 MiB, 2 passes).
const PARAMS = { algorithm: Algorithm.Argon2id, memoryCost: 19_456, timeCost: 2, parallelism: 1 } as const;

/** Injection token of the hasher (a plain class, built by a factory so tests can swap it). */
export const PASSWORD_HASHER = Symbol('PASSWORD_HASHER');

export class PasswordHasher {
  /** Verified against when the account does not exist, so both paths cost the same. */
  private dummy: Promise<string> | undefined;

  hash(password: string): Promise<string> {
    return hash(password, PARAMS);
  }

  async verify(passwordHash: string | undefined, password: string): Promise<boolean> {
    const target = passwordHash ?? (await (this.dummy ??= this.hash('not-a-real-password-for-timing')));
    try {
      const ok = await verify(target, password);
      return ok && passwordHash !== undefined;
    } catch {
      return false;
    }
  }
}
