import { randomBytes, randomUUID } from 'node:crypto';
import { Inject, Injectable, Optional, type OnApplicationBootstrap } from '@nestjs/common';
import { CONFIG, CAPABILITIES, LOGGER, OutboxWriter, SERVICE_DATA_SOURCE, type CustodianConfig } from '@custodian/platform';
import type { Logger } from 'pino';
import type { DataSource } from 'typeorm';
import { PASSWORD_HASHER } from '../auth/password-hasher';
import type { PasswordHasher } from '../auth/password-hasher';
import { MembershipEntity } from '../entities/membership.entity';
import { OrganizationEntity } from '../entities/organization.entity';
import { UserEntity } from '../entities/user.entity';
import type { KeyVault } from '../keys/key-vault';
import { KEY_VAULT, SigningKeyService } from '../keys/signing-key.service';
import {
  BOOTSTRAP_BANNER,
  FirstStartBanner,
  bannerText,
  showCredentials,
  type BootstrapBannerOptions,
  type FirstStart,
} from './first-start';
import { assertSigningKeysOpen } from './signing-keys-open.check';

export const DEFAULT_ADMIN_EMAIL = 'admin@custodian.local';

/**
 * First start of an installation (any mode): a signing key, an organization and an admin who
 * holds every system capability. A generated password is printed once, never logged. The
 * all-in-one host may hold the banner (BOOTSTRAP_BANNER) to add its demo users to it.
 */
@Injectable()
export class BootstrapService extends FirstStartBanner implements OnApplicationBootstrap {
  private first: FirstStart | undefined;
  private printed = false;

  constructor(
    @Inject(SERVICE_DATA_SOURCE) private readonly ds: DataSource,
    @Inject(SigningKeyService) private readonly keys: SigningKeyService,
    @Inject(KEY_VAULT) private readonly vault: KeyVault,
    @Inject(PASSWORD_HASHER) private readonly hasher: PasswordHasher,
    @Inject(OutboxWriter) private readonly outbox: OutboxWriter,
    @Inject(CONFIG) private readonly config: CustodianConfig,
    @Inject(LOGGER) private readonly logger: Logger,
    @Optional() @Inject(BOOTSTRAP_BANNER) private readonly banner?: BootstrapBannerOptions,
  ) {
    super();
  }

  firstStart(): FirstStart | undefined {
    return this.first;
  }

  print(extra: readonly string[] = []): void {
    if (!this.first || this.printed) return;
    this.printed = true;
    showCredentials(bannerText(this.first, extra), { dataDir: this.config.dataDir, logger: this.logger });
    // The password lives in this process only until it has been shown.
    this.first = { ...this.first, adminPassword: '' };
  }

  async onApplicationBootstrap(): Promise<void> {
    await assertSigningKeysOpen(this.ds, this.vault, this.config, this.logger);
    await this.keys.ensureActiveKey();
    const email = (this.config.bootstrap.adminEmail ?? DEFAULT_ADMIN_EMAIL).toLowerCase();
    const generated = this.config.bootstrap.adminPassword === undefined;
    const password = this.config.bootstrap.adminPassword ?? randomBytes(18).toString('base64url');
    const passwordHash = await this.hasher.hash(password);
    const created = await this.ds.transaction(async (m) => {
      await m.query('SELECT pg_advisory_xact_lock(hashtext($1))', ['custodian:bootstrap']);
      if ((await m.count(UserEntity)) > 0) return undefined;
      const org = m.create(OrganizationEntity, { id: randomUUID(), name: this.config.bootstrap.orgName, policyVersion: 1 });
      const user = m.create(UserEntity, {
        id: randomUUID(),
        email,
        displayName: 'Administrator',
        passwordHash,
        active: true,
        homeOrgId: org.id,
      });
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
    this.first = { orgId: created.id, orgName: created.name, adminEmail: email, adminPassword: password, passwordGenerated: generated };
    if (!this.banner?.hold) this.print();
  }
}
