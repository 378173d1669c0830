import { assertMasterKeyOpens, type CustodianConfig } from '@custodian/platform';
import type { Logger } from 'pino';
import { IsNull, type DataSource } from 'typeorm';
import { SigningKeyEntity } from '../entities/signing-key.entity';
import type { KeyVault } from '../keys/key-vault';

/**
 * Refuses the start when the installation's unretired signing keys exist and none opens under the
 * configured master key: with a wrong or replaced key, identity would answer ready and then fail
 * every login. Runs before a signing key could be created under the wrong key.
 */
export async function assertSigningKeysOpen(ds: DataSource, vault: KeyVault, config: CustodianConfig, logger: Logger): Promise<void> {
  const rows = await ds.getRepository(SigningKeyEntity).find({ where: { retiredAt: IsNull() }, order: { createdAt: 'DESC' }, take: 8 });
  await assertMasterKeyOpens({
    what: 'identity signing keys',
    config,
    sealed: rows,
    open: (row) => vault.open(row.privateKeyEnc, `signing-key:${row.kid}`),
    onUnopened: (row) => logger.warn({ kid: row.kid }, 'signing key does not open under the master key'),
  });
}
