import { ConfigError, type CustodianConfig } from './config';

/**
 * The configured master key does not open what this installation already sealed with its master
 * key. Starting anyway would answer ready while every login fails, and the audit service would
 * seal a new checkpoint key under the wrong key (a false tamper alarm later), so the start is
 * refused. A ConfigError, so entry points print the message alone, without a stack.
 */
export class MasterKeyMismatchError extends ConfigError {
  constructor(
    readonly what: string,
    readonly source: string,
  ) {
    super([
      `the master key (${source}) does not open the ${what} this installation already holds. ` +
        'Custodian refuses to start with it: restore the master key this installation was created with ' +
        '(from your backup of it), or point the service at the right key file. Never replace it with a new one: ' +
        'what it sealed cannot be recovered without it.',
    ]);
    this.name = 'MasterKeyMismatchError';
  }
}

/** Where the running master key came from, for messages (never the key itself). */
export function masterKeySource(config: Pick<CustodianConfig, 'secrets'>): string {
  return config.secrets.masterKeySource ?? 'CUSTODIAN_MASTER_KEY or CUSTODIAN_MASTER_KEY_FILE';
}

/**
 * Checks a set of existing sealed values at start: refuses when some exist and none opens under
 * the configured key. Values that fail while others open are reported through `onUnopened` (a
 * row written by someone without the key must not stop the installation that has it).
 */
export async function assertMasterKeyOpens<T>({
  what,
  config,
  sealed,
  open,
  onUnopened,
}: {
  what: string;
  config: Pick<CustodianConfig, 'secrets'>;
  sealed: readonly T[];
  open: (value: T) => unknown;
  onUnopened?: (value: T, error: unknown) => void;
}): Promise<void> {
  if (sealed.length === 0) return;
  let opened = 0;
  for (const value of sealed) {
    try {
      await open(value);
      opened++;
    } catch (error) {
      onUnopened?.(value, error);
    }
  }
  if (opened === 0) throw new MasterKeyMismatchError(what, masterKeySource(config));
}
