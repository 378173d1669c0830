import { Type, type Static } from '@sinclair/typebox';

/** Object names become table-name suffixes (r_<org>_<name> ≤ 63 chars), so they are short. */
export const OBJECT_NAME_PATTERN = '^[a-z][a-z0-9_]{0,27}$';
export const FIELD_NAME_PATTERN = '^[a-z][a-z0-9_]{0,62}$';
export const MAX_FIELDS = 200;
export const MAX_OPTIONS = 200;

export const RECORD_FIELD_TYPES = [
  'text',
  'number',
  'currency',
  'boolean',
  'date',
  'datetime',
  'select',
  'multiselect',
  'email',
  'url',
  'json',
  'lookup',
  'master_detail',
  // Metadata of an uploaded file; the content is stored outside the database (docs/files.md).
  'file',
] as const;
export type RecordFieldType = (typeof RECORD_FIELD_TYPES)[number];

export const FieldDefinitionSchema = Type.Object(
  {
    name: Type.String({ pattern: FIELD_NAME_PATTERN }),
    label: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
    type: Type.Union(RECORD_FIELD_TYPES.map((t) => Type.Literal(t))),
    required: Type.Optional(Type.Boolean()),
    unique: Type.Optional(Type.Boolean()),
    default: Type.Optional(Type.Unknown()),
    /** Hidden unless a permission set names the field explicitly (R5). */
    sensitive: Type.Optional(Type.Boolean()),
    /** Text: maximum length (default 255, at most 32,768). */
    maxLength: Type.Optional(Type.Integer({ minimum: 1, maximum: 32_768 })),
    /** select / multiselect values. */
    options: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 100, pattern: '^[^;]+$' }), { maxItems: MAX_OPTIONS })),
    /** Target object of lookup / master_detail. */
    reference: Type.Optional(Type.String({ pattern: OBJECT_NAME_PATTERN })),
  },
  { additionalProperties: false },
);
export type FieldDefinition = Static<typeof FieldDefinitionSchema>;

export const ObjectDefinitionSchema = Type.Object(
  {
    name: Type.String({ pattern: OBJECT_NAME_PATTERN }),
    label: Type.String({ minLength: 1, maxLength: 200 }),
    fields: Type.Array(FieldDefinitionSchema, { maxItems: MAX_FIELDS }),
    sharingModel: Type.Optional(
      Type.Union([
        Type.Literal('private'),
        Type.Literal('public_read'),
        Type.Literal('public_read_write'),
        Type.Literal('controlled_by_parent'),
      ]),
    ),
    grantAccessUsingHierarchy: Type.Optional(Type.Boolean()),
    app: Type.Optional(Type.String({ pattern: '^[a-z][a-z0-9_]{0,63}$' })),
    auditReads: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false, $id: 'https://custodian.dev/schemas/object-definition.json' },
);
export type ObjectDefinitionInput = Static<typeof ObjectDefinitionSchema>;

/**
 * `PUT meta/objects/:name` takes what `GET` answered: the definition plus the server-managed `version`
 * (when present, the version the caller read: a concurrent change answers 412) and `sharingRules`
 * (managed by the sharing-rules API; accepted when unchanged, refused when they differ).
 */
export const ObjectDefinitionReplaceSchema = Type.Object(
  {
    ...ObjectDefinitionSchema.properties,
    version: Type.Optional(Type.Integer({ minimum: 1 })),
    sharingRules: Type.Optional(Type.Array(Type.Unknown(), { maxItems: 1000 })),
  },
  { additionalProperties: false },
);
export type ObjectDefinitionReplace = Static<typeof ObjectDefinitionReplaceSchema>;

/** What is stored (definition jsonb) after defaults are applied. */
export interface StoredObjectDefinition {
  name: string;
  label: string;
  fields: FieldDefinition[];
  sharingModel: 'private' | 'public_read' | 'public_read_write' | 'controlled_by_parent';
  grantAccessUsingHierarchy: boolean;
  app?: string;
  auditReads: boolean;
  /** Sharing rules (R4d) in the policy library's shape; managed by the sharing-rules API. */
  sharingRules: unknown[];
}
