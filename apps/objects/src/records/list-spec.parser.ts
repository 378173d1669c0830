import { assertNoForbiddenKeys, isSafeName } from '@custodian/policy';
import { DEFAULT_LIMIT, MAX_LIMIT, MAX_OFFSET, MAX_ORDER_KEYS, bad, type ListSpec, type OrderKey } from './record-query';

const MAX_FIELDS = 200;
const MAX_WHERE_CHARS = 65_536;

function intParam(raw: unknown, name: string, def: number, min: number, max: number): number {
  if (raw === undefined) return def;
  const n = typeof raw === 'number' ? raw : typeof raw === 'string' && /^\d{1,7}$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isInteger(n) || n < min || n > max) throw bad(`${name} must be an integer between ${min} and ${max}`, `/${name}`);
  return n;
}

function orderKeys(raw: unknown): OrderKey[] {
  if (raw === undefined) return [];
  if (!Array.isArray(raw) || raw.length > MAX_ORDER_KEYS) throw bad(`orderBy takes at most ${MAX_ORDER_KEYS} keys`, '/orderBy');
  return raw.map((k, i) => {
    if (typeof k !== 'object' || k === null || Array.isArray(k)) throw bad('orderBy entries are {field, order}', `/orderBy/${i}`);
    const { field, order, ...rest } = k as Record<string, unknown>;
    if (Object.keys(rest).length > 0) throw bad('orderBy entries are {field, order}', `/orderBy/${i}`);
    if (typeof field !== 'string' || !isSafeName(field)) throw bad('Invalid field name', `/orderBy/${i}/field`);
    if (order !== undefined && order !== 'asc' && order !== 'desc') throw bad('order is asc or desc', `/orderBy/${i}/order`);
    return { field, order: (order as 'asc' | 'desc' | undefined) ?? 'asc' };
  });
}

function fieldList(raw: unknown): string[] | undefined {
  if (raw === undefined) return undefined;
  if (!Array.isArray(raw) || raw.length === 0 || raw.length > MAX_FIELDS || raw.some((f) => typeof f !== 'string' || !isSafeName(f)))
    throw bad('fields is a list of field names', '/fields');
  return raw as string[];
}

function common(object: string, input: Record<string, unknown>): ListSpec {
  if (input.cursor !== undefined && input.offset !== undefined) throw bad('Use either cursor or offset', '/cursor');
  if (input.cursor !== undefined && typeof input.cursor !== 'string') throw bad('Invalid cursor', '/cursor');
  if (input.where !== undefined) assertNoForbiddenKeys(input.where);
  return {
    object,
    fields: fieldList(input.fields),
    where: input.where,
    orderBy: orderKeys(input.orderBy),
    limit: intParam(input.limit, 'limit', DEFAULT_LIMIT, 1, MAX_LIMIT),
    offset: intParam(input.offset, 'offset', 0, 0, MAX_OFFSET),
    ...(typeof input.cursor === 'string' ? { cursor: input.cursor } : {}),
  };
}

const LIST_PARAMS = new Set(['fields', 'where', 'orderBy', 'limit', 'offset', 'cursor']);

/**
 * `GET data/:object` query parameters: `fields=a,b`, `where=<JSON>`, `orderBy=name,-amount`,
 * `limit`, `offset` | `cursor`. Anything else is 400 (R8: bounded before any query runs).
 */
export function parseListQuery(object: string, query: Record<string, unknown>): ListSpec {
  const input: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(query)) {
    if (!LIST_PARAMS.has(key)) throw bad('Unknown query parameter', `/${key.slice(0, 64)}`);
    if (typeof value !== 'string') throw bad('Repeated or structured query parameter', `/${key}`);
    input[key] = value;
  }
  if (typeof input.fields === 'string') input.fields = input.fields.split(',');
  if (typeof input.orderBy === 'string')
    input.orderBy = input.orderBy
      .split(',')
      .map((s) => (s.startsWith('-') ? { field: s.slice(1), order: 'desc' } : { field: s, order: 'asc' }));
  if (typeof input.where === 'string') {
    if (input.where.length > MAX_WHERE_CHARS) throw bad('where is too long', '/where');
    try {
      input.where = JSON.parse(input.where) as unknown;
    } catch {
      throw bad('where must be JSON', '/where');
    }
  }
  return common(object, input);
}

const QUERY_KEYS = new Set(['object', 'fields', 'where', 'orderBy', 'limit', 'offset', 'cursor', 'aggregations', 'groupBy', 'expand']);

/** The ObjectQL body of `POST query` (docs/objects.md, "ObjectQL"). */
export function parseObjectQl(body: unknown): { spec: ListSpec; raw: Record<string, unknown> } {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw bad('The query is a JSON object', '/');
  const raw = body as Record<string, unknown>;
  for (const key of Object.keys(raw)) if (!QUERY_KEYS.has(key)) throw bad('Unknown query key', `/${key.slice(0, 64)}`);
  if (typeof raw.object !== 'string' || !isSafeName(raw.object)) throw bad('object is required', '/object');
  return { spec: common(raw.object, raw), raw };
}
