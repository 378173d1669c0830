import { PolicyError } from '../errors/policy.error';
import type { FieldType } from '../model/object-security.schema';
import { FORBIDDEN_KEYS, isSafeName } from '../model/safe-input';
import {
  DEFAULT_WHERE_LIMITS,
  FALSE_NODE,
  TRUE_NODE,
  type FilterValue,
  type LeafOp,
  type WhereFieldResolver,
  type WhereLimits,
  type WhereNode,
} from './where.ast';

const FIELD_OPERATORS = new Set([
  '$eq',
  '$ne',
  '$gt',
  '$gte',
  '$lt',
  '$lte',
  '$in',
  '$nin',
  '$between',
  '$contains',
  '$startsWith',
  '$endsWith',
  '$null',
  '$exists',
  '$not',
]);
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const ISO_DATETIME = /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,6})?)?(?:Z|[+-](\d{2}):(\d{2})))?$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * An ISO 8601 date or date-time every reader agrees on: a real calendar day from year 1, hours
 * 0–23, an offset PostgreSQL accepts (at most 15:59). A bare date means midnight UTC, written out,
 * so the database does not read it in its session time zone while memory reads it as UTC.
 */
function isoDatetime(text: string): string | undefined {
  const m = ISO_DATETIME.exec(text);
  if (!m) return undefined;
  const [year, month, day] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  const days = month === 2 ? (leap ? 29 : 28) : [4, 6, 9, 11].includes(month) ? 30 : 31;
  if (year < 1 || month < 1 || month > 12 || day < 1 || day > days) return undefined;
  if (m[4] !== undefined && (Number(m[4]) > 23 || Number(m[5]) > 59 || Number(m[6] ?? 0) > 59)) return undefined;
  if (m[7] !== undefined && (Number(m[7]) > 15 || Number(m[8]) > 59)) return undefined;
  const value = m[4] === undefined ? `${text}T00:00:00Z` : text;
  return Number.isFinite(Date.parse(value)) ? value : undefined;
}

type Kind = 'string' | 'id' | 'number' | 'boolean' | 'datetime';

function kindOf(type: FieldType): Kind {
  switch (type) {
    case 'integer':
    case 'number':
      return 'number';
    case 'boolean':
      return 'boolean';
    case 'datetime':
      return 'datetime';
    case 'lookup':
    case 'master_detail':
      return 'id';
    default:
      return 'string';
  }
}

class WhereParser {
  private nodes = 0;

  constructor(
    private readonly resolver: WhereFieldResolver,
    private readonly limits: WhereLimits,
  ) {}

  parseRoot(where: unknown): WhereNode {
    if (where === undefined || where === null) return TRUE_NODE;
    return this.parseGroup(where, 1);
  }

  private count(): void {
    if (++this.nodes > this.limits.maxNodes) throw new PolicyError('filter_too_complex', { limit: this.limits.maxNodes });
  }

  private plainObject(value: unknown, path: string): Record<string, unknown> {
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      throw new PolicyError('invalid_input', { reason: 'expected_object', path });
    }
    const proto = Object.getPrototypeOf(value);
    if (proto !== Object.prototype && proto !== null) throw new PolicyError('invalid_input', { reason: 'expected_object', path });
    return value as Record<string, unknown>;
  }

  /** `{ a: 1, $or: [...] }` — implicit AND of its entries. */
  private parseGroup(value: unknown, depth: number): WhereNode {
    if (depth > this.limits.maxDepth) throw new PolicyError('filter_too_deep', { limit: this.limits.maxDepth });
    const obj = this.plainObject(value, 'where');
    const children: WhereNode[] = [];
    for (const key of Object.keys(obj)) {
      if (FORBIDDEN_KEYS.has(key)) throw new PolicyError('forbidden_key', { key });
      this.count();
      const item = obj[key];
      if (key === '$and' || key === '$or') {
        if (!Array.isArray(item) || item.length === 0)
          throw new PolicyError('invalid_input', { reason: 'expected_non_empty_array', operator: key });
        if (item.length > this.limits.maxNodes) throw new PolicyError('filter_too_complex', { limit: this.limits.maxNodes });
        const parts = item.map((part) => this.parseGroup(part, depth + 1));
        children.push({ kind: key === '$and' ? 'and' : 'or', children: parts });
      } else if (key === '$not') {
        children.push({ kind: 'not', child: this.parseGroup(item, depth + 1) });
      } else if (key.startsWith('$')) {
        throw new PolicyError('unknown_operator', { operator: key.slice(0, 64) });
      } else {
        children.push(this.parseField(key, item, depth));
      }
    }
    if (children.length === 0) return TRUE_NODE;
    return children.length === 1 ? children[0] : { kind: 'and', children };
  }

  private fieldType(field: string): FieldType {
    if (!isSafeName(field)) throw new PolicyError('invalid_name', { what: 'field', name: String(field).slice(0, 64) });
    const type = this.resolver.typeOf(field);
    // Unknown and unreadable fields answer the same, so a filter cannot probe which hidden fields exist.
    if (type === undefined || (this.resolver.canRead && !this.resolver.canRead(field))) {
      throw new PolicyError('field_not_readable', { field });
    }
    return type;
  }

  private parseField(field: string, spec: unknown, depth: number): WhereNode {
    const type = this.fieldType(field);
    if (spec === null || typeof spec !== 'object') return this.leafEq(field, type, spec);
    if (Array.isArray(spec)) throw new PolicyError('invalid_value', { field, reason: 'array_needs_operator' });
    return this.parseOperators(field, type, spec, depth);
  }

  private parseOperators(field: string, type: FieldType, spec: object, depth: number): WhereNode {
    if (depth > this.limits.maxDepth) throw new PolicyError('filter_too_deep', { limit: this.limits.maxDepth });
    const ops = this.plainObject(spec, field);
    const keys = Object.keys(ops);
    if (keys.length === 0) throw new PolicyError('invalid_value', { field, reason: 'empty_operator_object' });
    const parts: WhereNode[] = [];
    for (const op of keys) {
      if (FORBIDDEN_KEYS.has(op)) throw new PolicyError('forbidden_key', { key: op });
      if (!FIELD_OPERATORS.has(op)) {
        throw op.startsWith('$')
          ? new PolicyError('unknown_operator', { operator: op.slice(0, 64) })
          : new PolicyError('invalid_value', { field, reason: 'nested_object' });
      }
      this.count();
      parts.push(this.parseOperator(field, type, op, ops[op], depth));
    }
    return parts.length === 1 ? parts[0] : { kind: 'and', children: parts };
  }

  private parseOperator(field: string, type: FieldType, op: string, arg: unknown, depth: number): WhereNode {
    const kind = kindOf(type);
    switch (op) {
      case '$eq':
        return this.leafEq(field, type, arg);
      case '$ne':
        return { kind: 'not', child: this.leafEq(field, type, arg) };
      case '$gt':
      case '$gte':
      case '$lt':
      case '$lte':
        if (kind === 'boolean' || kind === 'id') throw new PolicyError('invalid_value', { field, operator: op, reason: 'not_ordered' });
        return this.leaf(field, type, op.slice(1) as LeafOp, this.value(field, type, arg, op));
      case '$between': {
        if (kind === 'boolean' || kind === 'id') throw new PolicyError('invalid_value', { field, operator: op, reason: 'not_ordered' });
        if (!Array.isArray(arg) || arg.length !== 2)
          throw new PolicyError('invalid_value', { field, operator: op, reason: 'expected_pair' });
        return {
          kind: 'and',
          children: [
            this.leaf(field, type, 'gte', this.value(field, type, arg[0], op)),
            this.leaf(field, type, 'lte', this.value(field, type, arg[1], op)),
          ],
        };
      }
      case '$in':
        return this.leafIn(field, type, arg, op);
      case '$nin':
        return { kind: 'not', child: this.leafIn(field, type, arg, op) };
      case '$contains':
      case '$startsWith':
      case '$endsWith':
        if (kind !== 'string') throw new PolicyError('invalid_value', { field, operator: op, reason: 'not_text' });
        return this.leaf(field, type, op.slice(1) as LeafOp, this.value(field, type, arg, op));
      case '$null':
      case '$exists': {
        if (typeof arg !== 'boolean') throw new PolicyError('invalid_value', { field, operator: op, reason: 'expected_boolean' });
        const isNull = this.leaf(field, type, 'null', null);
        return (op === '$null') === arg ? isNull : { kind: 'not', child: isNull };
      }
      case '$not':
        if (arg === null || typeof arg !== 'object' || Array.isArray(arg)) {
          throw new PolicyError('invalid_value', { field, operator: op, reason: 'expected_operator_object' });
        }
        return { kind: 'not', child: this.parseOperators(field, type, arg, depth + 1) };
      default:
        throw new PolicyError('unknown_operator', { operator: op });
    }
  }

  private leaf(field: string, fieldType: FieldType, op: LeafOp, value: FilterValue | readonly FilterValue[] | null): WhereNode {
    return { kind: 'leaf', op, field, fieldType, value };
  }

  private leafEq(field: string, type: FieldType, arg: unknown): WhereNode {
    if (arg === null) return this.leaf(field, type, 'null', null);
    return this.leaf(field, type, 'eq', this.value(field, type, arg, '$eq'));
  }

  private leafIn(field: string, type: FieldType, arg: unknown, op: string): WhereNode {
    if (!Array.isArray(arg)) throw new PolicyError('invalid_value', { field, operator: op, reason: 'expected_array' });
    if (arg.length > this.limits.maxInList)
      throw new PolicyError('in_list_too_long', { field, limit: this.limits.maxInList, length: arg.length });
    // `$in: []` matches nothing (O7) — never everything.
    if (arg.length === 0) return FALSE_NODE;
    let hasNull = false;
    const values: FilterValue[] = [];
    for (const item of arg) {
      if (item === null) hasNull = true;
      else values.push(this.value(field, type, item, op));
    }
    const unique = [...new Set(values)];
    const parts: WhereNode[] = [];
    if (unique.length > 0) parts.push(this.leaf(field, type, 'in', unique));
    if (hasNull) parts.push(this.leaf(field, type, 'null', null));
    return parts.length === 1 ? parts[0] : { kind: 'or', children: parts };
  }

  private value(field: string, type: FieldType, arg: unknown, op: string): FilterValue {
    const kind = kindOf(type);
    const bad = (reason: string): never => {
      throw new PolicyError('invalid_value', { field, operator: op, reason });
    };
    if (arg === null || arg === undefined) return bad('null_not_comparable');
    switch (kind) {
      case 'number':
        if (typeof arg !== 'number' || !Number.isFinite(arg)) return bad('expected_number');
        if (type === 'integer' && !Number.isSafeInteger(arg)) return bad('expected_integer');
        return arg;
      case 'boolean':
        if (typeof arg !== 'boolean') return bad('expected_boolean');
        return arg;
      case 'datetime': {
        const value = typeof arg === 'string' ? isoDatetime(arg) : undefined;
        return value ?? bad('expected_iso_datetime');
      }
      case 'id':
        if (typeof arg !== 'string') return bad('expected_string');
        if (this.limits.idFormat === 'uuid') return UUID.test(arg) ? arg.toLowerCase() : bad('expected_uuid');
        return this.text(field, arg, bad);
      default:
        if (typeof arg !== 'string') return bad('expected_string');
        return this.text(field, arg, bad);
    }
  }

  private text(field: string, arg: string, bad: (reason: string) => never): string {
    if (arg.length > this.limits.maxStringLength) {
      throw new PolicyError('value_too_long', { field, limit: this.limits.maxStringLength });
    }
    // NUL and lone surrogates cannot be stored in PostgreSQL text; refusing them keeps SQL and
    // memory in agreement.
    if (arg.includes('\u0000')) return bad('nul_character');
    if (LONE_SURROGATE.test(arg)) return bad('invalid_unicode');
    return arg;
  }
}

/**
 * Parses and validates an ObjectQL `where` (Mongo style) into a WhereNode. Enforces the R8 bounds,
 * refuses unknown operators, operators in field position and prototype keys (400), and — when the
 * resolver has `canRead` — fields the caller cannot read (403 `field_not_readable`).
 */
export function parseWhere(where: unknown, resolver: WhereFieldResolver, limits: WhereLimits = DEFAULT_WHERE_LIMITS): WhereNode {
  return foldConstants(new WhereParser(resolver, limits).parseRoot(where));
}

/**
 * Folds constants (`$in: []` is false, `$nin: []` true, …) so that a filter that is always true or
 * always false becomes a single const node — callers rely on that to avoid binding parameters for
 * SQL that would then be dropped.
 */
export function foldConstants(node: WhereNode): WhereNode {
  switch (node.kind) {
    case 'not': {
      const child = foldConstants(node.child);
      if (child.kind === 'const') return child.value ? FALSE_NODE : TRUE_NODE;
      if (child.kind === 'not') return child.child;
      return { kind: 'not', child };
    }
    case 'and':
    case 'or': {
      const absorbing = node.kind === 'or';
      const kept: WhereNode[] = [];
      for (const c of node.children) {
        const child = foldConstants(c);
        if (child.kind === 'const') {
          if (child.value === absorbing) return child;
          continue;
        }
        kept.push(child);
      }
      if (kept.length === 0) return absorbing ? FALSE_NODE : TRUE_NODE;
      return kept.length === 1 ? kept[0] : { kind: node.kind, children: kept };
    }
    default:
      return node;
  }
}
