import { createHash, randomUUID } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import { ErrorCode, type PrincipalSnapshot } from '@custodian/contracts';
import { CustodianException, OutboxWriter, SERVICE_DATA_SOURCE, canonicalJson, isUniqueViolation } from '@custodian/platform';
import { isSystemField, quoteIdent } from '@custodian/policy';
import type { DataSource, EntityManager } from 'typeorm';
import { ObjectDefinitionEntity } from '../entities/object-definition.entity';
import { columnType, FieldValueError, toColumnValue } from './field-types';
import { build } from './object-catalog.service';
import type { FieldDefinition, ObjectDefinitionInput, StoredObjectDefinition } from './object-definition.schema';
import { OBJECTS_SCHEMA, recordTable, recordTableName } from './org-tables';

export const MAX_OBJECTS_PER_ORG = 500;

export interface ObjectView extends StoredObjectDefinition {
  version: number;
}

function invalid(message: string, path: string): CustodianException {
  return new CustodianException(ErrorCode.ValidationFailed, message, { issues: [{ path, message }] });
}

export function normalise(input: ObjectDefinitionInput): StoredObjectDefinition {
  return {
    name: input.name,
    label: input.label,
    fields: input.fields.map((f) => (f.type === 'master_detail' ? { ...f, required: true } : f)),
    sharingModel: input.sharingModel ?? 'private',
    grantAccessUsingHierarchy: input.grantAccessUsingHierarchy ?? true,
    ...(input.app ? { app: input.app } : {}),
    auditReads: input.auditReads ?? false,
    sharingRules: [],
  };
}

/** Semantic checks the JSON Schema cannot express; `others` are the org's other objects. */
function check(def: StoredObjectDefinition, others: ReadonlyMap<string, StoredObjectDefinition>): void {
  const seen = new Set<string>();
  def.fields.forEach((f, i) => {
    const path = `/fields/${i}`;
    if (isSystemField(f.name) || f.name === 'org_id') throw invalid(`Field ${f.name} is a system field`, `${path}/name`);
    if (seen.has(f.name)) throw invalid(`Duplicate field ${f.name}`, `${path}/name`);
    seen.add(f.name);
    const isRef = f.type === 'lookup' || f.type === 'master_detail';
    if (isRef && !f.reference) throw invalid('A lookup needs a reference object', `${path}/reference`);
    if (!isRef && f.reference) throw invalid('Only lookups have a reference', `${path}/reference`);
    if (isRef && f.reference !== def.name && !others.has(f.reference!)) throw invalid(`Unknown object ${f.reference}`, `${path}/reference`);
    const hasOptions = f.type === 'select' || f.type === 'multiselect';
    if (hasOptions && !(f.options && f.options.length > 0)) throw invalid('select fields need options', `${path}/options`);
    if (!hasOptions && f.options) throw invalid('Only select fields have options', `${path}/options`);
    if (f.maxLength !== undefined && f.type !== 'text') throw invalid('Only text fields have maxLength', `${path}/maxLength`);
    if (f.unique && (f.type === 'json' || f.type === 'multiselect' || f.type === 'boolean'))
      throw invalid('This type cannot be unique', `${path}/unique`);
    // A file is only ever set by an upload after the record exists, and its metadata is never a key.
    if (f.type === 'file' && (f.required || f.unique)) throw invalid('A file field cannot be required or unique', path);
    if (f.default !== undefined) {
      if (isRef) throw invalid('Lookups have no default', `${path}/default`);
      try {
        toColumnValue(f, f.default);
      } catch (error) {
        if (error instanceof FieldValueError) throw invalid(`Invalid default: ${error.reason}`, `${path}/default`);
        throw error;
      }
    }
  });
  const masters = def.fields.filter((f) => f.type === 'master_detail');
  if (def.sharingModel === 'controlled_by_parent' && masters.length !== 1)
    throw invalid('controlled_by_parent needs exactly one master_detail field', '/sharingModel');
  // The policy library validates the whole catalog (parent chains, names) exactly as it will use it.
  build('check', [...[...others.values()].filter((o) => o.name !== def.name), def]);
}

function columnDdl(f: FieldDefinition): string {
  return `${quoteIdent(f.name)} ${columnType(f.type)}`;
}

/** PostgreSQL truncates identifiers at 63 bytes, which could make two index names collide: hash long ones. */
function indexName(base: string, suffix: string): string {
  const name = `${base}_${suffix}`;
  return name.length <= 63 ? name : `ix_${createHash('sha256').update(name).digest('hex').slice(0, 40)}`;
}

function uniqueIndexName(orgId: string, object: string, field: string): string {
  return indexName(`${recordTableName(orgId, object)}_${field}`, 'uq');
}

/**
 * Object metadata (step 1 of issue #5): definitions per org, and the record tables, columns and
 * indexes they imply, changed in the same transaction as the definition row and its audit event.
 */
@Injectable()
export class ObjectMetadataService {
  constructor(
    @Inject(SERVICE_DATA_SOURCE) private readonly ds: DataSource,
    @Inject(OutboxWriter) private readonly outbox: OutboxWriter,
  ) {}

  async list(orgId: string): Promise<ObjectView[]> {
    const rows = await this.ds
      .getRepository(ObjectDefinitionEntity)
      .find({ where: { orgId }, order: { name: 'ASC' }, take: MAX_OBJECTS_PER_ORG });
    return rows.map(view);
  }

  async get(orgId: string, name: string): Promise<ObjectView> {
    const row = await this.ds.getRepository(ObjectDefinitionEntity).findOne({ where: { orgId, name } });
    if (!row) throw CustodianException.notFound('Object not found');
    return view(row);
  }

  create(principal: PrincipalSnapshot, input: ObjectDefinitionInput): Promise<ObjectView> {
    return this.inOrgTransaction(principal.orgId, (m) => this.createIn(m, principal, input));
  }

  /** Creates inside a caller's transaction (bundles apply many in one). */
  async createIn(m: EntityManager, principal: PrincipalSnapshot, input: ObjectDefinitionInput): Promise<ObjectView> {
    const orgId = principal.orgId;
    const others = await this.definitions(m, orgId);
    if (others.has(input.name)) throw new CustodianException(ErrorCode.Conflict, `Object ${input.name} already exists`);
    if (others.size >= MAX_OBJECTS_PER_ORG) throw new CustodianException(ErrorCode.Conflict, 'Too many objects in this organization');
    const def = normalise(input);
    check(def, others);
    const table = recordTable(orgId, def.name);
    await m.query(
      `CREATE TABLE ${table} (
         id uuid PRIMARY KEY, org_id uuid NOT NULL, owner_id uuid,
         created_at timestamptz NOT NULL DEFAULT now(), created_by uuid NOT NULL,
         updated_at timestamptz NOT NULL DEFAULT now(), updated_by uuid NOT NULL,
         version integer NOT NULL DEFAULT 1${def.fields.map((f) => `, ${columnDdl(f)}`).join('')})`,
    );
    const short = recordTableName(orgId, def.name);
    await m.query(`CREATE INDEX ${quoteIdent(indexName(short, 'owner'))} ON ${table} (org_id, owner_id)`);
    await m.query(`CREATE INDEX ${quoteIdent(indexName(short, 'created'))} ON ${table} (org_id, created_at, id)`);
    for (const f of def.fields) await this.fieldIndexes(m, orgId, def.name, f);
    const row = m.create(ObjectDefinitionEntity, {
      id: randomUUID(),
      orgId,
      name: def.name,
      label: def.label,
      definition: def as never,
      version: 1,
    });
    await m.save(row);
    await this.audit(m, orgId, def.name, null, def);
    return view(row);
  }

  replace(
    principal: PrincipalSnapshot,
    name: string,
    input: ObjectDefinitionInput,
    read: { version?: number; sharingRules?: unknown[] } = {},
  ): Promise<ObjectView> {
    if (input.name !== name) throw invalid('The name in the body must match the path', '/name');
    return this.inOrgTransaction(principal.orgId, async (m) => {
      // What GET answered round-trips: the version read must still be current, sharing rules unchanged.
      const [row] = (await m.query('SELECT version, definition FROM object_definition WHERE org_id = $1 AND name = $2 FOR UPDATE', [
        principal.orgId,
        name,
      ])) as Array<{ version: number; definition: StoredObjectDefinition }>;
      if (!row) throw CustodianException.notFound('Object not found');
      if (read.version !== undefined && read.version !== row.version)
        throw new CustodianException(
          ErrorCode.PreconditionFailed,
          `The definition changed since version ${read.version} (now ${row.version})`,
        );
      if (read.sharingRules !== undefined && canonicalJson(read.sharingRules) !== canonicalJson(row.definition.sharingRules ?? []))
        throw invalid('Sharing rules are changed through /meta/objects/:name/sharing-rules, not here', '/sharingRules');
      return this.replaceIn(m, principal, name, input);
    });
  }

  /** Replaces a definition inside a caller's transaction (bundles apply many in one). */
  async replaceIn(m: EntityManager, principal: PrincipalSnapshot, name: string, input: ObjectDefinitionInput): Promise<ObjectView> {
    const orgId = principal.orgId;
    const all = await this.definitions(m, orgId);
    const before = all.get(name);
    if (!before) throw CustodianException.notFound('Object not found');
    const def = { ...normalise(input), sharingRules: before.sharingRules };
    check(def, all);
    const table = recordTable(orgId, name);
    const oldFields = new Map(before.fields.map((f) => [f.name, f]));
    const newFields = new Map(def.fields.map((f) => [f.name, f]));
    for (const [fname, f] of oldFields) {
      if (!newFields.has(fname)) {
        if (before.sharingRules.some((r) => JSON.stringify(r).includes(`"${fname}"`)))
          throw new CustodianException(ErrorCode.Conflict, `Field ${fname} is used by a sharing rule`);
        await m.query(`ALTER TABLE ${table} DROP COLUMN ${quoteIdent(fname)}`);
      } else {
        const next = newFields.get(fname)!;
        if (columnType(next.type) !== columnType(f.type) || (next.reference ?? null) !== (f.reference ?? null))
          throw new CustodianException(ErrorCode.Conflict, `The type of field ${fname} cannot change`);
        if (Boolean(next.unique) !== Boolean(f.unique)) {
          if (f.unique) await m.query(`DROP INDEX ${quoteIdent(OBJECTS_SCHEMA)}.${quoteIdent(uniqueIndexName(orgId, name, fname))}`);
          else await this.fieldIndexes(m, orgId, name, { ...next, type: next.type });
        }
      }
    }
    for (const [fname, f] of newFields) {
      if (oldFields.has(fname)) continue;
      await m.query(`ALTER TABLE ${table} ADD COLUMN ${columnDdl(f)}`);
      await this.fieldIndexes(m, orgId, name, f);
    }
    await m.query(
      'UPDATE object_definition SET definition = $3::jsonb, label = $4, version = version + 1, updated_at = now() WHERE org_id = $1 AND name = $2',
      [orgId, name, JSON.stringify(def), def.label],
    );
    await this.audit(m, orgId, name, before, def);
    const row = await m.findOneOrFail(ObjectDefinitionEntity, { where: { orgId, name } });
    return view(row);
  }

  remove(principal: PrincipalSnapshot, name: string): Promise<void> {
    return this.inOrgTransaction(principal.orgId, async (m) => {
      const orgId = principal.orgId;
      const all = await this.definitions(m, orgId);
      const before = all.get(name);
      if (!before) throw CustodianException.notFound('Object not found');
      for (const other of all.values()) {
        if (other.name !== name && other.fields.some((f) => f.reference === name))
          throw new CustodianException(ErrorCode.Conflict, `Object ${other.name} refers to ${name}`);
      }
      await m.query(`DROP TABLE ${recordTable(orgId, name)}`);
      await m.query('DELETE FROM record_shares WHERE org_id = $1 AND object_name = $2', [orgId, name]);
      await m.query('DELETE FROM object_definition WHERE org_id = $1 AND name = $2', [orgId, name]);
      await this.audit(m, orgId, name, before, null);
    });
  }

  /** Stores new sharing rules for an object (validated by the policy library through check()). */
  async setSharingRules(m: EntityManager, orgId: string, name: string, rules: unknown[]): Promise<StoredObjectDefinition> {
    const all = await this.definitions(m, orgId);
    const before = all.get(name);
    if (!before) throw CustodianException.notFound('Object not found');
    const def = { ...before, sharingRules: rules };
    check(def, all);
    await m.query(
      'UPDATE object_definition SET definition = $3::jsonb, version = version + 1, updated_at = now() WHERE org_id = $1 AND name = $2',
      [orgId, name, JSON.stringify(def)],
    );
    return def;
  }

  async definitions(m: EntityManager, orgId: string): Promise<Map<string, StoredObjectDefinition>> {
    const rows: Array<{ definition: StoredObjectDefinition }> = await m.query(
      'SELECT definition FROM object_definition WHERE org_id = $1',
      [orgId],
    );
    return new Map(rows.map((r) => [r.definition.name, r.definition]));
  }

  /** Metadata changes of one org are serialized (DDL and the definitions that describe it). */
  inOrgTransaction<T>(orgId: string, fn: (m: EntityManager) => Promise<T>): Promise<T> {
    return this.ds.transaction(async (m) => {
      await m.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`objects:metadata:${orgId}`]);
      try {
        return await fn(m);
      } catch (error) {
        if (isUniqueViolation(error)) throw new CustodianException(ErrorCode.Conflict, 'Existing records violate the unique constraint');
        throw error;
      }
    });
  }

  private async fieldIndexes(m: EntityManager, orgId: string, object: string, f: FieldDefinition): Promise<void> {
    const table = recordTable(orgId, object);
    if (f.unique)
      await m.query(
        `CREATE UNIQUE INDEX ${quoteIdent(uniqueIndexName(orgId, object, f.name))} ON ${table} (org_id, ${quoteIdent(f.name)})`,
      );
  }

  private async audit(
    m: EntityManager,
    orgId: string,
    name: string,
    before: StoredObjectDefinition | null,
    after: StoredObjectDefinition | null,
  ): Promise<void> {
    await this.outbox.append(m, {
      orgId,
      action: 'objects.metadata.changed',
      outcome: 'success',
      target: { type: 'object', id: name },
      details: { name, changes: { definition: { from: before, to: after } } },
    });
  }
}

function view(row: ObjectDefinitionEntity): ObjectView {
  return { ...(row.definition as unknown as StoredObjectDefinition), version: row.version };
}
