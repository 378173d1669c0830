import type { AuditVisibility } from '@custodian/contracts';

type Json = Record<string, unknown>;

/** What an event says about records: the object, the record it targets (if one), records it lists. */
export interface RecordSubject {
  object: string;
  id?: string;
  ids: string[];
}

/** A stored event as one reader may see it; `redacted` when something in it was removed for them. */
export interface ShownEvent {
  event: Json;
  redacted: boolean;
}

/** Details of record events that hold field values or names, keyed by field name. */
const FIELD_MAPS = ['changes', 'fields', 'before', 'after', 'record', 'values'] as const;
/** What stands in for a field value the reader cannot read: "changed, hidden". */
const HIDDEN = Object.freeze({ hidden: true });
/** Details of record events that carry no field values (ids, versions, share grants, owners). */
const PLAIN_KEYS = new Set(['version', 'sharedWith', 'accessLevel', 'fromOwner', 'toOwner']);

function isPlainObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * The records an event is about, when it is about records: the objects service's record and share
 * events. Every other event (sign-ins, directory, metadata, denials, which carry codes and names
 * only) has no record subject and is shown as stored.
 */
export function recordSubject(event: Json): RecordSubject | undefined {
  if (event.service !== 'objects' || typeof event.action !== 'string') return undefined;
  if (!event.action.startsWith('objects.record.') && !event.action.startsWith('objects.share.')) return undefined;
  const target = isPlainObject(event.target) ? event.target : {};
  const details = isPlainObject(event.details) ? event.details : {};
  return {
    // A record event without an object cannot be matched to any access: it is withheld below.
    object: typeof target.type === 'string' ? target.type : '',
    ...(typeof target.id === 'string' ? { id: target.id } : {}),
    ids: Array.isArray(details.ids) ? details.ids.filter((x): x is string => typeof x === 'string') : [],
  };
}

/** The objects and records a batch of events names, for one visibility question. */
export function subjectsOf(events: Json[]): { objects: string[]; records: Array<{ object: string; id: string }> } {
  const objects = new Set<string>();
  const records = new Map<string, { object: string; id: string }>();
  for (const event of events) {
    const s = recordSubject(event);
    if (!s || s.object === '') continue;
    objects.add(s.object);
    for (const id of s.id !== undefined ? [s.id, ...s.ids] : s.ids) records.set(`${s.object}\u0000${id}`, { object: s.object, id });
  }
  return { objects: [...objects], records: [...records.values()] };
}

/**
 * Applies one reader's access (as the objects service answered it) to stored events: an event
 * about a record the reader cannot read is withheld (undefined); the value of a field below read
 * is replaced by `{ "hidden": true }` in the details, and the event is marked redacted.
 */
export class AuditViewFilter {
  private readonly readable: Set<string>;

  constructor(private readonly visibility: AuditVisibility) {
    this.readable = new Set(visibility.readable.map((r) => `${r.object}\u0000${r.id}`));
  }

  /** The reader's access hides nothing: events and hashes are shown as stored. */
  get unrestricted(): boolean {
    return this.visibility.unrestricted;
  }

  show(event: Json): ShownEvent | undefined {
    const subject = recordSubject(event);
    if (!subject || this.visibility.unrestricted) return { event, redacted: false };
    const object = Object.prototype.hasOwnProperty.call(this.visibility.objects, subject.object)
      ? this.visibility.objects[subject.object]
      : undefined;
    if (!object) return undefined;
    // A deleted record is readable by no one, unless the reader reads every record of its object.
    const canRead = (id: string): boolean => object.allRecords || this.readable.has(`${subject.object}\u0000${id}`);
    if (subject.id !== undefined && !canRead(subject.id)) return undefined;
    if (!isPlainObject(event.details)) return { event, redacted: false };

    const fields = new Set(object.readableFields);
    let redacted = false;
    const details: Json = {};
    for (const [key, value] of Object.entries(event.details)) {
      if ((FIELD_MAPS as readonly string[]).includes(key) && isPlainObject(value)) {
        details[key] = Object.fromEntries(
          Object.entries(value).map(([field, v]) => {
            if (fields.has(field)) return [field, v];
            redacted = true;
            return [field, HIDDEN];
          }),
        );
      } else if (key === 'fields' && Array.isArray(value) && value.every((f) => typeof f === 'string')) {
        // Names of the fields a reader read: names only, as metadata and permission-set events carry them too.
        details[key] = value;
      } else if (key === 'ids' && Array.isArray(value)) {
        const kept = value.filter((id) => typeof id === 'string' && canRead(id));
        redacted ||= kept.length !== value.length;
        details[key] = kept;
      } else if (PLAIN_KEYS.has(key)) {
        details[key] = value;
      } else {
        // A detail this filter does not know could hold a value: withheld until it is described here.
        redacted = true;
      }
    }
    return redacted ? { event: { ...event, details }, redacted } : { event, redacted };
  }
}
