import { Inject, Injectable, type OnApplicationBootstrap } from '@nestjs/common';
import {
  ApplyMetadataChange,
  DryRunMetadataChange,
  type MetadataDiff,
  type MetadataOperationResult,
  type PrincipalSnapshot,
  type RequestOf,
} from '@custodian/contracts';
import { BUS, CustodianException, validate, type Bus } from '@custodian/platform';
import type { EntityManager } from 'typeorm';
import { RequestDecisionService } from '../decision/request-decision.service';
import { ObjectDefinitionEntity } from '../entities/object-definition.entity';
import { ObjectDefinitionSchema } from './object-definition.schema';
import { OUTCOME_BY_CODE, asRequester } from '../decision/as-requester';
import { ObjectMetadataService } from './object-metadata.service';

type ApplyRequest = RequestOf<typeof ApplyMetadataChange>;
type DryRunRequest = RequestOf<typeof DryRunMetadataChange>;

/** Thrown at the end of a dry-run (or a stale apply) to roll the transaction back with its answer. */
class Answer extends Error {
  constructor(readonly result: MetadataOperationResult) {
    super(result.outcome);
  }
}

/**
 * Proposed object-definition changes for approvals: a dry-run runs the whole replacement (the
 * requester's `manage_metadata` — for an agent only with `metadata:write` —, validation, the DDL)
 * and rolls it back, answering the diff and the definition's version; an apply does it for real
 * when the version is still the one the reviewers saw, and leaves a receipt so a retried apply
 * answers its first result.
 */
@Injectable()
export class MetadataOperationsBusHandler implements OnApplicationBootstrap {
  constructor(
    @Inject(BUS) private readonly bus: Bus,
    @Inject(ObjectMetadataService) private readonly metadata: ObjectMetadataService,
    @Inject(RequestDecisionService) private readonly decisions: RequestDecisionService,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    await this.bus.handle(DryRunMetadataChange, (req) => this.run(req, undefined));
    await this.bus.handle(ApplyMetadataChange, (req) => this.run(req, req));
  }

  private async run(req: DryRunRequest, apply: ApplyRequest | undefined): Promise<MetadataOperationResult> {
    return asRequester(this.bus, req.requester, async (principal) => {
      const { decision } = await this.decisions.forPrincipal(principal);
      if (!decision.hasCapability('manage_metadata'))
        return {
          outcome: 'forbidden',
          code: 'missing_capability',
          message: 'Changing metadata needs manage_metadata (and metadata:write for an agent)',
        };
      const input = validate(ObjectDefinitionSchema, req.definition);
      if (!input.ok)
        return {
          outcome: 'invalid',
          code: 'validation_failed',
          message: input.issues
            .map((i) => `${i.path} ${i.message}`)
            .join('; ')
            .slice(0, 2000),
        };
      if (input.value.name !== req.object)
        return { outcome: 'invalid', code: 'validation_failed', message: 'The definition names another object' };
      try {
        return await this.metadata.inOrgTransaction(principal.orgId, async (m) => {
          if (apply) {
            const receipt = await this.receipt(m, principal, apply.idempotencyKey);
            if (receipt) return receipt;
          }
          const row = await m.findOne(ObjectDefinitionEntity, { where: { orgId: principal.orgId, name: req.object } });
          if (!row) throw new Answer({ outcome: 'not_found', code: 'object_not_found', message: 'No such object' });
          if (apply && row.version !== apply.expectedVersion)
            throw new Answer({
              outcome: 'stale',
              code: 'precondition_failed',
              message: 'The definition has changed since the proposal',
              version: row.version,
            });
          const before = row.definition;
          const after = await this.metadata.replaceIn(m, principal, req.object, input.value);
          const diff = metadataDiff(before, after as unknown as Record<string, unknown>);
          if (!apply) throw new Answer({ outcome: 'allowed', version: row.version, diff });
          const result: MetadataOperationResult = { outcome: 'applied', version: after.version, diff };
          await m.query(
            `INSERT INTO idempotency_key (org_id, user_id, key, request_hash, status, response) VALUES ($1, $2, $3, 'metadata', 200, $4::jsonb)`,
            [principal.orgId, principal.userId, apply.idempotencyKey, JSON.stringify(result)],
          );
          return result;
        });
      } catch (error) {
        if (error instanceof Answer) return error.result;
        if (error instanceof CustodianException && OUTCOME_BY_CODE[error.code])
          return { outcome: OUTCOME_BY_CODE[error.code], code: error.code, message: error.message.slice(0, 2000) };
        throw error;
      }
    });
  }

  private async receipt(m: EntityManager, principal: PrincipalSnapshot, key: string): Promise<MetadataOperationResult | undefined> {
    const rows = (await m.query('SELECT response FROM idempotency_key WHERE org_id = $1 AND user_id = $2 AND key = $3', [
      principal.orgId,
      principal.userId,
      key,
    ])) as Array<{ response: MetadataOperationResult }>;
    return rows[0]?.response;
  }
}

const OBJECT_PROPERTIES = ['label', 'description', 'sharingModel', 'masterDetailField', 'grantAccessUsingHierarchy', 'app', 'auditReads'];

/** Fields added, removed and changed, and the object-level properties that changed. */
export function metadataDiff(before: Record<string, unknown>, after: Record<string, unknown>): MetadataDiff {
  type Field = Record<string, unknown> & { name: string };
  const fieldsOf = (d: Record<string, unknown>): Map<string, Field> => new Map(((d.fields as Field[]) ?? []).map((f) => [f.name, f]));
  const was = fieldsOf(before);
  const now = fieldsOf(after);
  const same = (a: unknown, b: unknown): boolean => JSON.stringify(a ?? null) === JSON.stringify(b ?? null);
  const diff: MetadataDiff = { fieldsAdded: [], fieldsRemoved: [], fieldsChanged: [], properties: {} };
  for (const [name, f] of now) {
    const old = was.get(name);
    if (!old) diff.fieldsAdded.push(f);
    else if (!same(old, f)) diff.fieldsChanged.push({ name, from: old, to: f });
  }
  for (const [name, f] of was) if (!now.has(name)) diff.fieldsRemoved.push(f);
  for (const key of OBJECT_PROPERTIES)
    if (!same(before[key], after[key])) diff.properties[key] = { from: before[key] ?? null, to: after[key] ?? null };
  return diff;
}
