import { randomBytes, randomUUID } from 'node:crypto';
import { Inject, Injectable, type OnApplicationBootstrap } from '@nestjs/common';
import { CONFIG, CAPABILITIES, LOGGER, OutboxWriter, SERVICE_DATA_SOURCE, type CustodianConfig } from '@custodian/platform';
import type { Logger } from 'pino';
import type { DataSource } from 'typeorm';
import { PASSWORD_HASHER } from '../auth/password-hasher';
import type { PasswordHasher } from '../auth/password-hasher';
import { MembershipEntity } from '../entities/membership.entity';
import { OrganizationEntity } from '../entities/organization.entity';
import { UserEntity } from '../entities/user.entity';
import { SigningKeyService } from '../keys/signing-key.service';

export const DEFAULT_ADMIN_EMAIL = 'admin@custodian.local';

/**
 * First start of an installation (any mode): a signing key, an organization and an admin who
 * holds every system capability. A generated password is printed once, never logged.
 */
@Injectable()
export class BootstrapService implements OnApplicationBootstrap {
  constructor(
    @Inject(SERVICE_DATA_SOURCE) private readonly ds: DataSource,
    @Inject(SigningKeyService) private readonly keys: SigningKeyService,
    @Inject(PASSWORD_HASHER) private readonly hasher: PasswordHasher,
    @Inject(OutboxWriter) private readonly outbox: OutboxWriter,
    @Inject(CONFIG) private readonly config: CustodianConfig,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    await this.keys.ensureActiveKey();
    const email = (this.config.bootstrap.adminEmail ?? DEFAULT_ADMIN_EMAIL).toLowerCase();
    const generated = this.config.bootstrap.adminPassword === undefined;
    const password = this.config.bootstrap.adminPassword ?? randomBytes(18).toString('base64url');
    const passwordHash = await this.hasher.hash(password);
    const created = await this.ds.transaction(async (m) => {
      await m.query('SELECT pg_advisory_xact_lock(hashtext($1))', ['custodian:bootstrap']);
      if ((await m.count(UserEntity)) > 0) return undefined;
      const org = m.create(OrganizationEntity, { id: randomUUID(), name: this.config.bootstrap.orgName, policyVersion: 1 });
      const user = m.create(UserEntity, { id: randomUUID(), email, displayName: 'Administrator', passwordHash, active: true });
      await m.insert(OrganizationEntity, org);
      await m.insert(UserEntity, user);
      await m.insert(MembershipEntity, { id: randomUUID(), orgId: org.id, userId: user.id, capabilities: [...CAPABILITIES] });
      await this.outbox.append(m, {
        orgId: org.id,
        action: 'identity.bootstrapped',
        outcome: 'success',
        target: { type: 'organization', id: org.id },
        details: { adminUserId: user.id, passwordSource: generated ? 'generated' : 'configured' },
      });
      return org;
    });
    if (!created) return;
    this.logger.info({ orgId: created.id, adminEmail: email }, 'installation bootstrapped');
    const lines = [
      '',
      '================================================================',
      ' Custodian is set up. Bootstrap administrator:',
      `   organization  ${created.name} (${created.id})`,
      `   email         ${email}`,
      `   password      ${generated ? password : '(from CUSTODIAN_ADMIN_PASSWORD)'}`,
      generated ? ' This password is shown once. Store it now and change it.' : '',
      '================================================================',
      '',
    ];
    process.stdout.write(`${lines.filter((l) => l !== '').join('\n')}\n`);
  }
}
