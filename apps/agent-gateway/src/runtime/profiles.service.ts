import { Inject, Injectable } from '@nestjs/common';
import { ErrorCode, type PrincipalSnapshot } from '@custodian/contracts';
import { CustodianException, OutboxWriter, SERVICE_DATA_SOURCE, isUniqueViolation, uuidv7 } from '@custodian/platform';
import type { DataSource } from 'typeorm';
import { appendRuntimeEvent } from './runtime-audit';
import { runtimeStore, type Profile } from './runtime-store';

/** What a caller chooses of a profile; the id, org and version are the service's. */
export type ProfileFields = Pick<Profile, 'name' | 'model' | 'provider' | 'systemPrompt' | 'scopes' | 'limits'>;

/**
 * The org's agent profiles: reads, and writes that commit with their `settings.changed` audit event
 * in one transaction. A second profile with the same name is a conflict.
 */
@Injectable()
export class AgentProfilesService {
  constructor(
    @Inject(SERVICE_DATA_SOURCE) private readonly ds: DataSource,
    @Inject(OutboxWriter) private readonly outbox: OutboxWriter,
  ) {}

  list(orgId: string): Promise<Profile[]> {
    return runtimeStore.profiles(this.ds, orgId);
  }

  get(orgId: string, id: string): Promise<Profile | undefined> {
    return runtimeStore.profile(this.ds, orgId, id);
  }

  create(principal: PrincipalSnapshot, fields: ProfileFields): Promise<Profile> {
    return this.save(principal, uuidv7(), fields, true);
  }

  /** Replaces an existing profile's fields (the caller has checked that it exists). */
  replace(principal: PrincipalSnapshot, id: string, fields: ProfileFields): Promise<Profile> {
    return this.save(principal, id, fields, false);
  }

  async remove(principal: PrincipalSnapshot, id: string): Promise<void> {
    await this.ds.transaction(async (m) => {
      if (!(await runtimeStore.deleteProfile(m, principal.orgId, id))) throw CustodianException.notFound('Agent profile not found');
      await appendRuntimeEvent(this.outbox, m, principal, {
        action: 'settings.changed',
        outcome: 'success',
        target: { type: 'agent_profile', id },
        details: { change: 'deleted' },
      });
    });
  }

  private async save(principal: PrincipalSnapshot, id: string, p: ProfileFields, created: boolean): Promise<Profile> {
    try {
      return await this.ds.transaction(async (m) => {
        const saved = await runtimeStore.saveProfile(m, { id, orgId: principal.orgId, ...p });
        await appendRuntimeEvent(this.outbox, m, principal, {
          action: 'settings.changed',
          outcome: 'success',
          target: { type: 'agent_profile', id },
          details: {
            change: created ? 'created' : 'updated',
            name: p.name,
            model: p.model,
            provider: p.provider,
            scopes: p.scopes,
            limits: { ...p.limits },
            systemPromptChars: p.systemPrompt.length,
          },
        });
        return saved;
      });
    } catch (error) {
      if (isUniqueViolation(error)) throw new CustodianException(ErrorCode.Conflict, 'An agent profile with this name exists');
      throw error;
    }
  }
}
