import { Type, type Static } from '@sinclair/typebox';
import { defineRequest } from './contract';
import { DelegationSchema } from './identity.contracts';

const Id = Type.String({ format: 'uuid' });
/** Audit events name objects and records as free strings (target.type ≤ 64, target.id ≤ 128). */
const ObjectRef = Type.String({ minLength: 1, maxLength: 64 });
const RecordRef = Type.String({ minLength: 1, maxLength: 128 });

/** Records and objects one request may ask about; the audit service splits a page into requests of this size. */
export const MAX_AUDIT_VISIBILITY_REFS = 1000;

/**
 * Who reads the audit log: the credential the audit service authenticated. Objects re-reads the
 * snapshot from identity (as it does for approvals' requesters), so it decides on identity's word,
 * with the credential's narrowing (API key scopes, agent delegation), not on the caller's copy.
 */
export const AuditReaderSchema = Type.Object(
  {
    userId: Id,
    orgId: Id,
    sessionId: Type.Optional(Id),
    apiKeyId: Type.Optional(Id),
    delegation: Type.Optional(DelegationSchema),
  },
  { additionalProperties: false },
);
export type AuditReader = Static<typeof AuditReaderSchema>;

export const ObjectVisibilitySchema = Type.Object(
  {
    /** The reader reads every record of the object (view/modify all, a public sharing model). */
    allRecords: Type.Boolean(),
    /** Fields the reader can read now, system fields included. */
    readableFields: Type.Array(Type.String({ maxLength: 64 }), { maxItems: 1000 }),
  },
  { additionalProperties: false },
);
export type ObjectVisibility = Static<typeof ObjectVisibilitySchema>;

export const AuditVisibilitySchema = Type.Object(
  {
    /**
     * The reader's access hides nothing in the org now: every record and every field of every
     * object is readable. Only then may audit views carry hashes (they commit to hidden values).
     */
    unrestricted: Type.Boolean(),
    /** Per object asked about that the reader can read; an object missing here is not readable (or gone). */
    objects: Type.Record(ObjectRef, ObjectVisibilitySchema),
    /** The records asked about that the reader can read now; absent ones are unreadable or deleted. */
    readable: Type.Array(Type.Object({ object: ObjectRef, id: RecordRef }, { additionalProperties: false }), {
      maxItems: MAX_AUDIT_VISIBILITY_REFS,
    }),
  },
  { additionalProperties: false },
);
export type AuditVisibility = Static<typeof AuditVisibilitySchema>;

/**
 * Asked by the audit service for each page of events it shows (list, one event, export): which
 * of the records and objects the page names the reader can read now, and which fields, decided by
 * the same Decision as the records API. A reader identity no longer accepts reads nothing.
 */
export const GetAuditVisibility = defineRequest({
  subject: 'objects.audit.visibility',
  service: 'objects',
  request: Type.Object(
    {
      reader: AuditReaderSchema,
      /** Objects named by events (with or without a record id). */
      objects: Type.Array(ObjectRef, { maxItems: MAX_AUDIT_VISIBILITY_REFS }),
      records: Type.Array(Type.Object({ object: ObjectRef, id: RecordRef }, { additionalProperties: false }), {
        maxItems: MAX_AUDIT_VISIBILITY_REFS,
      }),
    },
    { additionalProperties: false },
  ),
  response: AuditVisibilitySchema,
});
