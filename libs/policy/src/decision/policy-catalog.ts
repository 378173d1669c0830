import { PolicyError } from '../errors/policy.error';
import { parseObjectSecurity } from '../model/model.validator';
import { assertSafeName } from '../model/safe-input';
import type { FieldSecurity, FieldType, ObjectSecurity, SharingRule } from '../model/object-security.schema';
import { DEFAULT_WHERE_LIMITS, SYSTEM_FIELDS, type WhereLimits, type WhereNode } from '../objectql/where.ast';
import { parseWhere } from '../objectql/where.parser';

export type CompiledSharingRule = SharingRule & {
  /** Parsed criteria (criteria rules only), evaluated with system rights. */
  readonly criteriaNode?: WhereNode;
};

/** Object security metadata, validated and indexed once per metadata version. */
export interface CompiledObject {
  readonly name: string;
  readonly meta: ObjectSecurity;
  readonly app?: string;
  readonly sharingModel: ObjectSecurity['sharingModel'];
  readonly grantAccessUsingHierarchy: boolean;
  /** Declared (non-system) fields. */
  readonly fields: ReadonlyMap<string, FieldSecurity>;
  /** Declared + system fields → type. */
  readonly fieldTypes: ReadonlyMap<string, FieldType>;
  readonly parent?: { readonly field: string; readonly object: string };
  readonly sharingRules: readonly CompiledSharingRule[];
}

export interface PolicyCatalog {
  readonly objects: ReadonlyMap<string, CompiledObject>;
  get(name: string): CompiledObject | undefined;
}

const MAX_PARENT_CHAIN = 4;

/**
 * Validates object security metadata (JSON Schema, prototype keys, then semantics: master-detail
 * fields, parent chains without cycles, criteria rules that parse) and indexes it.
 */
export function compileCatalog(objects: readonly unknown[], limits: WhereLimits = DEFAULT_WHERE_LIMITS): PolicyCatalog {
  const metas = objects.map((o) => parseObjectSecurity(o));
  const byName = new Map<string, ObjectSecurity>();
  for (const meta of metas) {
    if (byName.has(meta.name)) throw new PolicyError('invalid_metadata', { object: meta.name, reason: 'duplicate_object' });
    byName.set(meta.name, meta);
  }
  const compiled = new Map<string, CompiledObject>();
  for (const meta of metas) compiled.set(meta.name, compileObject(meta, byName, limits));
  for (const object of compiled.values()) {
    let current: CompiledObject | undefined = object;
    for (let hops = 0; current?.parent; hops++) {
      if (hops >= MAX_PARENT_CHAIN)
        throw new PolicyError('invalid_metadata', { object: object.name, reason: 'parent_chain_too_long_or_cyclic' });
      current = compiled.get(current.parent.object);
    }
  }
  return { objects: compiled, get: (name) => compiled.get(name) };
}

function compileObject(meta: ObjectSecurity, all: ReadonlyMap<string, ObjectSecurity>, limits: WhereLimits): CompiledObject {
  // The schema pattern admits `constructor`/`prototype`; names become CASL subjects and SQL identifiers.
  assertSafeName(meta.name, 'object');
  if (meta.app !== undefined) assertSafeName(meta.app, 'app');
  for (const field of meta.fields) assertSafeName(field.name, 'field');
  const fields = new Map<string, FieldSecurity>();
  const fieldTypes = new Map<string, FieldType>(Object.entries(SYSTEM_FIELDS));
  for (const field of meta.fields) {
    if (fieldTypes.has(field.name))
      throw new PolicyError('invalid_metadata', { object: meta.name, field: field.name, reason: 'duplicate_or_system_field' });
    if ((field.type === 'lookup' || field.type === 'master_detail') && !field.reference) {
      throw new PolicyError('invalid_metadata', { object: meta.name, field: field.name, reason: 'reference_required' });
    }
    fields.set(field.name, field);
    fieldTypes.set(field.name, field.type);
  }
  let parent: CompiledObject['parent'];
  if (meta.sharingModel === 'controlled_by_parent') {
    const field = meta.masterDetailField ? fields.get(meta.masterDetailField) : undefined;
    if (!field || field.type !== 'master_detail' || !field.reference || !all.has(field.reference)) {
      throw new PolicyError('invalid_metadata', { object: meta.name, reason: 'controlled_by_parent_needs_master_detail_field' });
    }
    parent = { field: field.name, object: field.reference };
  }
  const resolver = { typeOf: (f: string) => fieldTypes.get(f) };
  const names = new Set<string>();
  const sharingRules = (meta.sharingRules ?? []).map((rule): CompiledSharingRule => {
    if (names.has(rule.name))
      throw new PolicyError('invalid_metadata', { object: meta.name, rule: rule.name, reason: 'duplicate_rule_name' });
    names.add(rule.name);
    if (rule.type !== 'criteria') return rule;
    try {
      return { ...rule, criteriaNode: parseWhere(rule.criteria, resolver, limits) };
    } catch (error) {
      const code = error instanceof PolicyError ? error.code : 'invalid_input';
      throw new PolicyError('invalid_metadata', { object: meta.name, rule: rule.name, reason: 'bad_criteria', cause: code });
    }
  });
  return {
    name: meta.name,
    meta,
    app: meta.app,
    sharingModel: meta.sharingModel,
    grantAccessUsingHierarchy: meta.grantAccessUsingHierarchy ?? true,
    fields,
    fieldTypes,
    parent,
    sharingRules,
  };
}
