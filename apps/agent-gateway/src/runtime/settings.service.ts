import { Inject, Injectable } from '@nestjs/common';
import type { PrincipalSnapshot } from '@custodian/contracts';
import { OutboxWriter, SERVICE_DATA_SOURCE, SettingsStore, type SettingView } from '@custodian/platform';
import type { DataSource } from 'typeorm';
import { appendRuntimeEvent } from './runtime-audit';
import { RUNTIME_SETTINGS_STORE } from './runtime-settings';

/**
 * The org's agent runtime settings: reads, and writes that commit with their `settings.changed`
 * audit event in one transaction (the store never answers or audits a secret's value).
 */
@Injectable()
export class RuntimeSettingsService {
  constructor(
    @Inject(RUNTIME_SETTINGS_STORE) private readonly store: SettingsStore,
    @Inject(SERVICE_DATA_SOURCE) private readonly ds: DataSource,
    @Inject(OutboxWriter) private readonly outbox: OutboxWriter,
  ) {}

  /** Whether the runtime has a setting of this name (a named provider's `provider.<name>.*` included). */
  isKnown(name: string): boolean {
    return this.store.definition(name) !== undefined;
  }

  list(orgId: string): Promise<SettingView[]> {
    return this.store.view(this.ds, orgId);
  }

  /** Sets one setting (the store checks the value against its definition) and answers its view. */
  async set(principal: PrincipalSnapshot, name: string, value: unknown): Promise<SettingView> {
    await this.ds.transaction(async (m) => {
      const change = await this.store.put(m, principal.orgId, name, value, principal.userId);
      await appendRuntimeEvent(this.outbox, m, principal, {
        action: 'settings.changed',
        outcome: 'success',
        target: { type: 'settings', id: name },
        details: { ...change },
      });
    });
    return (await this.list(principal.orgId)).find((s) => s.name === name)!;
  }

  /** Clears one setting; clearing one that is not set changes nothing and audits nothing. */
  async clear(principal: PrincipalSnapshot, name: string): Promise<void> {
    await this.ds.transaction(async (m) => {
      const change = await this.store.clear(m, principal.orgId, name);
      if (change)
        await appendRuntimeEvent(this.outbox, m, principal, {
          action: 'settings.changed',
          outcome: 'success',
          target: { type: 'settings', id: name },
          details: { ...change },
        });
    });
  }
}
