import { randomUUID } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import { ErrorCode, type BundleChange } from '@custodian/contracts';
import { CustodianException, OutboxWriter, SERVICE_DATA_SOURCE, canonicalJson } from '@custodian/platform';
import { isSystemField } from '@custodian/policy';
import type { DataSource, EntityManager } from 'typeorm';
import { ObjectActionEntity } from '../entities/object-action.entity';
import { FieldValueError, toColumnValue } from '../metadata/field-types';
import type { StoredObjectDefinition } from '../metadata/object-definition.schema';
import { normaliseAction, type ActionDefinition, type ActionDefinitionInput } from './action.schema';

export interface ActionView extends ActionDefinition {
  createdAt: string;
  updatedAt: string;
}

function invalid(message: string, path: string): CustodianException {
  return new CustodianException(ErrorCode.ValidationFailed, message, { issues: [{ path, message }] });
}

/**
 * Checks actions against the object definitions they name: the object exists, every field it sets
 * is a declared, non-system field, and every value is valid for that field. Paths name the
 * offending bundle entry (`/actions/<i>/…`).
 */
export function checkActions(actions: readonly ActionDefinitionInput[], objects: ReadonlyMap<string, StoredObjectDefinition>): void {
  const seen = new Set<string>();
  actions.forEach((action, i) => {
    const key = `${action.object}.${action.name}`;
    if (seen.has(key)) throw invalid(`Duplicate action ${key}`, `/actions/${i}/name`);
    seen.add(key);
    const def = objects.get(action.object);
    if (!def) throw invalid(`Unknown object ${action.object}`, `/actions/${i}/object`);
    for (const [name, value] of Object.entries(action.set)) {
      const path = `/actions/${i}/set/${name}`;
      if (isSystemField(name) || name === 'org_id') throw invalid(`Field ${name} is a system field`, path);
      const field = def.fields.find((f) => f.name === name);
      if (!field) throw invalid(`Object ${action.object} has no field ${name}`, path);
      try {
        toColumnValue(field, value);
      } catch (error) {
        if (error instanceof FieldValueError) throw invalid(`Invalid value for ${name}: ${error.reason}`, path);
        throw error;
      }
    }
  });
}

const view = (row: ObjectActionEntity): ActionView => ({
  ...(row.definition as ActionDefinition),
  createdAt: row.createdAt.toISOString(),
  updatedAt: row.updatedAt.toISOString(),
});

/** Declared actions per object: stored idempotently by (object, name), each change audited. */
@Injectable()
export class ActionsService {
  constructor(
    @Inject(SERVICE_DATA_SOURCE) private readonly ds: DataSource,
    @Inject(OutboxWriter) private readonly outbox: OutboxWriter,
  ) {}

  async list(orgId: string, object: string): Promise<ActionView[]> {
    const rows = await this.ds
      .getRepository(ObjectActionEntity)
      .find({ where: { orgId, objectName: object }, order: { name: 'ASC' }, take: 1000 });
    return rows.map(view);
  }

  /** Inside the caller's (bundle) transaction; `checkActions` must have passed. */
  async applyIn(m: EntityManager, orgId: string, actions: readonly ActionDefinitionInput[]): Promise<BundleChange[]> {
    const changes: BundleChange[] = [];
    for (const input of actions) {
      const next = normaliseAction(input);
      const name = `${next.object}.${next.name}`;
      const existing = await m.findOne(ObjectActionEntity, { where: { orgId, objectName: next.object, name: next.name } });
      if (existing && canonicalJson(existing.definition) === canonicalJson(next)) {
        changes.push({ kind: 'action', name, change: 'unchanged' });
        continue;
      }
      const id = existing?.id ?? randomUUID();
      if (existing) {
        await m.query('UPDATE object_action SET definition = $2::jsonb, updated_at = now() WHERE id = $1', [id, JSON.stringify(next)]);
      } else {
        await m.insert(ObjectActionEntity, { id, orgId, objectName: next.object, name: next.name, definition: next });
      }
      await this.outbox.append(m, {
        orgId,
        action: 'objects.metadata.changed',
        outcome: 'success',
        target: { type: 'action', id: name },
        details: { name, ...(existing ? { before: existing.definition } : {}), after: next },
      });
      changes.push({
        kind: 'action',
        name,
        change: existing ? 'update' : 'create',
        ...(existing ? { before: existing.definition } : {}),
        after: next,
      });
    }
    return changes;
  }
}
