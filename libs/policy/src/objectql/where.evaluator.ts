import { ownValue } from '../model/safe-input';
import type { FilterValue, WhereNode } from './where.ast';

/** A record as the application holds it: own properties only; missing ≡ null. */
export type RecordRow = Readonly<Record<string, unknown>>;

/** Orders strings by Unicode code point — the order of PostgreSQL's "C" collation on UTF-8. */
export function compareCodePoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    // Surrogates (U+D800–DFFF) encode code points above U+FFFF, which sort after U+E000–FFFF.
    const xs = x >= 0xd800 && x <= 0xdfff;
    const ys = y >= 0xd800 && y <= 0xdfff;
    if (xs !== ys) return xs ? 1 : -1;
    return x - y;
  }
  return a.length - b.length;
}

function toMillis(value: unknown): number {
  if (value instanceof Date) return value.getTime();
  if (typeof value === 'string') return Date.parse(value);
  return Number.NaN;
}

function present(value: unknown): boolean {
  return value !== null && value !== undefined;
}

function equals(actual: unknown, expected: FilterValue, datetime: boolean): boolean {
  if (datetime) return toMillis(actual) === toMillis(expected);
  return actual === expected;
}

function compare(actual: unknown, expected: FilterValue, datetime: boolean): number {
  if (datetime) return toMillis(actual) - toMillis(expected);
  if (typeof actual === 'string' && typeof expected === 'string') return compareCodePoints(actual, expected);
  if (typeof actual === 'number' && typeof expected === 'number') return actual - expected;
  return Number.NaN;
}

/**
 * Evaluates a parsed filter against a record in memory, with exactly the semantics of the SQL the
 * same node compiles to (see where.sql-compiler.ts): two-valued, null/missing never match a
 * comparison, `not` is boolean negation.
 */
export function evaluateWhere(node: WhereNode, row: RecordRow): boolean {
  switch (node.kind) {
    case 'const':
      return node.value;
    case 'and':
      for (let i = 0; i < node.children.length; i++) if (!evaluateWhere(node.children[i], row)) return false;
      return true;
    case 'or':
      for (let i = 0; i < node.children.length; i++) if (evaluateWhere(node.children[i], row)) return true;
      return false;
    case 'not':
      return !evaluateWhere(node.child, row);
    case 'leaf': {
      const actual = ownValue(row, node.field);
      if (node.op === 'null') return !present(actual);
      if (!present(actual)) return false;
      const datetime = node.fieldType === 'datetime';
      const value = node.value as FilterValue;
      switch (node.op) {
        case 'eq':
          return equals(actual, value, datetime);
        case 'in': {
          const values = node.value as readonly FilterValue[];
          for (let i = 0; i < values.length; i++) if (equals(actual, values[i], datetime)) return true;
          return false;
        }
        case 'gt':
          return compare(actual, value, datetime) > 0;
        case 'gte':
          return compare(actual, value, datetime) >= 0;
        case 'lt':
          return compare(actual, value, datetime) < 0;
        case 'lte':
          return compare(actual, value, datetime) <= 0;
        case 'contains':
          return typeof actual === 'string' && actual.includes(value as string);
        case 'startsWith':
          return typeof actual === 'string' && actual.startsWith(value as string);
        case 'endsWith':
          return typeof actual === 'string' && actual.endsWith(value as string);
      }
    }
  }
}
