import type { FieldType } from '../model/object-security.schema';

/** A primitive value a filter may compare with (already type-checked against the field). */
export type FilterValue = string | number | boolean;

export type LeafOp = 'eq' | 'gt' | 'gte' | 'lt' | 'lte' | 'in' | 'contains' | 'startsWith' | 'endsWith' | 'null';

/**
 * The normalised ObjectQL filter. Sugar is removed at parse time so that the SQL compiler and the
 * in-memory evaluator implement a handful of primitives with identical semantics:
 * `$ne v` → not(eq v); `$nin` → not(in); `$eq null` → null; `$in [.., null]` → or(in, null);
 * `$in []` → const false; `$between [a,b]` → and(gte a, lte b); `$exists b` → null / not(null).
 * Every node is two-valued: a null or missing field makes a leaf false (except `null`), and `not`
 * is a plain boolean negation — that is exactly MongoDB's behaviour for null/missing values.
 */
export type WhereNode =
  | { readonly kind: 'const'; readonly value: boolean }
  | { readonly kind: 'and'; readonly children: readonly WhereNode[] }
  | { readonly kind: 'or'; readonly children: readonly WhereNode[] }
  | { readonly kind: 'not'; readonly child: WhereNode }
  | {
      readonly kind: 'leaf';
      readonly op: LeafOp;
      readonly field: string;
      readonly fieldType: FieldType;
      /** For `in`: a non-empty array without nulls. For `null`: unused. */
      readonly value: FilterValue | readonly FilterValue[] | null;
    };

export const TRUE_NODE: WhereNode = { kind: 'const', value: true };
export const FALSE_NODE: WhereNode = { kind: 'const', value: false };

/** Limits of R8 for filters, and how the host stores record ids. */
export interface WhereLimits {
  readonly maxDepth: number;
  readonly maxNodes: number;
  readonly maxInList: number;
  readonly maxStringLength: number;
  /**
   * `uuid`: the host keeps record ids (id, org_id, owner_id, lookups, master-detail) in uuid
   * columns, so a filter value for them must be a UUID (compared in lower case) — anything else is
   * refused before SQL rather than failing the whole statement in the database. Default `text`:
   * ids are opaque strings.
   */
  readonly idFormat?: 'text' | 'uuid';
}

export const DEFAULT_WHERE_LIMITS: WhereLimits = { maxDepth: 8, maxNodes: 256, maxInList: 1000, maxStringLength: 1024 };

/** Every field a where may reference, with read rights already applied when the caller is a user. */
export interface WhereFieldResolver {
  /** The field's type, or undefined when it does not exist. */
  typeOf(field: string): FieldType | undefined;
  /** False → `field_not_readable`. Omitted for policy criteria, which run with system rights. */
  canRead?(field: string): boolean;
}

/** Fields every record has; never directly writable. */
export const SYSTEM_FIELDS: Readonly<Record<string, FieldType>> = Object.freeze({
  id: 'lookup',
  org_id: 'lookup',
  owner_id: 'lookup',
  created_by: 'lookup',
  created_at: 'datetime',
  updated_by: 'lookup',
  updated_at: 'datetime',
  version: 'integer',
});

export function isSystemField(name: string): boolean {
  return Object.prototype.hasOwnProperty.call(SYSTEM_FIELDS, name);
}
