/** One line of an approval's diff as the reviewer may see it. */
export type DiffRow =
  | { field: string; kind: 'changed'; from: unknown; to: unknown }
  | { field: string; kind: 'hidden' }
  | { field: string; kind: 'other'; value: unknown };

/**
 * Turns the API's diff object into rows. A field the reviewer cannot read arrives as
 * `{"hidden": true}`: it is shown as "changed, hidden" and never as a value.
 */
export function diffRows(diff: unknown): DiffRow[] {
  if (!diff || typeof diff !== 'object' || Array.isArray(diff)) return [];
  return Object.entries(diff as Record<string, unknown>)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([field, entry]): DiffRow => {
      if (entry && typeof entry === 'object' && !Array.isArray(entry)) {
        const e = entry as Record<string, unknown>;
        if (e.hidden === true) return { field, kind: 'hidden' };
        if ('from' in e || 'to' in e) return { field, kind: 'changed', from: e.from, to: e.to };
      }
      return { field, kind: 'other', value: entry };
    });
}

/** A value as text for a table cell or a diff side; absent values read as an em dash. */
export function formatValue(value: unknown): string {
  if (value === undefined || value === null || value === '') return '—';
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}
