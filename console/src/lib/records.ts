/** An object as `GET /meta/objects?view=caller` describes it to the caller: readable fields only. */
export interface ObjectMeta {
  name: string;
  label?: string;
  app?: string;
  fields: FieldMeta[];
}

export interface FieldMeta {
  name: string;
  type: string;
  required?: boolean;
  options?: string[];
  reference?: string;
  sensitive?: boolean;
  /** What this caller may do with the field on an existing record (R5), as the server says. */
  access?: 'read' | 'edit';
}

/** Only a field the server marked `edit` for this caller is editable; anything else is read-only. */
export function isEditable(field: FieldMeta): boolean {
  return field.access === 'edit';
}

export interface SortState {
  field: string;
  desc: boolean;
}

export interface FilterState {
  field: string;
  value: string;
}

/** Types a text box can filter with `$startsWith`; the rest are matched exactly. */
const TEXT_TYPES = new Set(['text', 'email', 'url', 'textarea', 'phone']);
const NUMBER_TYPES = new Set(['number', 'currency', 'percent', 'integer']);

/**
 * The columns of the records table: only the fields the server listed for this caller, so a field
 * hidden from them (a margin) cannot even be asked for.
 */
export function readableColumns(meta: ObjectMeta): string[] {
  return meta.fields.map((f) => f.name);
}

/**
 * The `POST /query` body for one page. Sorting and filtering are only possible on listed fields;
 * anything else is dropped here rather than sent (the server would refuse it with field_not_readable).
 */
export function buildQuery(
  meta: ObjectMeta,
  opts: { sort?: SortState; filter?: FilterState; cursor?: string; limit: number },
): Record<string, unknown> {
  const fields = readableColumns(meta);
  const byName = new Map(meta.fields.map((f) => [f.name, f]));
  const body: Record<string, unknown> = { object: meta.name, fields, limit: opts.limit };
  const sortField = opts.sort && byName.has(opts.sort.field) ? opts.sort : undefined;
  // The id breaks ties, so keyset pages never skip or repeat rows that share a sort value.
  body.orderBy = sortField
    ? [{ field: sortField.field, order: sortField.desc ? 'desc' : 'asc' }]
    : [{ field: 'created_at', order: 'desc' }];
  const f = opts.filter && byName.get(opts.filter.field);
  const value = opts.filter?.value.trim();
  if (f && value) {
    if (TEXT_TYPES.has(f.type)) body.where = { [f.name]: { $startsWith: value } };
    else if (NUMBER_TYPES.has(f.type) && Number.isFinite(Number(value))) body.where = { [f.name]: Number(value) };
    else body.where = { [f.name]: value };
  }
  if (opts.cursor) body.cursor = opts.cursor;
  return body;
}

/** The values of an edit form that differ from the record: only those are sent, never a read-only field. */
export function changedValues(meta: ObjectMeta, record: Record<string, unknown>, form: Record<string, string>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const f of meta.fields) {
    if (!(f.name in form) || !isEditable(f)) continue;
    const raw = form[f.name];
    const before = record[f.name];
    const value = raw === '' ? null : NUMBER_TYPES.has(f.type) ? Number(raw) : raw;
    if ((before ?? null) !== value) out[f.name] = value;
  }
  return out;
}
