import { Type } from '@sinclair/typebox';
import { AnyObject, DateTime, Nullable, Uuid } from '@custodian/platform';

/** The answers of the agent gateway's routes, for the OpenAPI document (`@ApiContract`, docs/api.md). */

/** An unpaged list in the one list envelope (ADR 0018): `nextCursor` is always null. */
const Unpaged = <T extends Parameters<typeof Type.Array>[0]>(item: T) =>
  Type.Object({ items: Type.Array(item), nextCursor: Type.Null() }, { additionalProperties: true });

export const Setting = Type.Object(
  {
    name: Type.String(),
    type: Type.String(),
    description: Type.String(),
    value: Type.Optional(Nullable(Type.Union([Type.String(), Type.Number(), Type.Boolean()]))),
    default: Type.Optional(Type.Union([Type.String(), Type.Number(), Type.Boolean()])),
    secret: Type.Optional(
      Type.Object(
        { set: Type.Boolean(), source: Nullable(Type.String()), reference: Type.Optional(Type.String()) },
        { additionalProperties: true },
      ),
    ),
    version: Type.Integer(),
    updatedAt: Nullable(DateTime),
  },
  { additionalProperties: true },
);
export const SettingList = Unpaged(Setting);
export const SettingValue = Type.Object(
  { value: Type.Unknown({ description: 'the new value; a secret is read from the body only and never answered' }) },
  { additionalProperties: false },
);
export const ProfileAnswer = Type.Object(
  {
    id: Uuid,
    name: Type.String(),
    model: Nullable(Type.String()),
    provider: Type.Optional(
      Nullable(Type.String({ description: 'a named provider (provider.<name>.* settings); null = the org default' })),
    ),
    systemPrompt: Type.String(),
    scopes: Type.Array(Type.String()),
    version: Type.Integer(),
  },
  { additionalProperties: true },
);
export const ProfileList = Unpaged(ProfileAnswer);
export const ConversationAnswer = Type.Object(
  { id: Uuid, profileId: Type.String(), state: Type.String(), createdAt: DateTime, updatedAt: DateTime },
  { additionalProperties: true },
);
export const ConversationList = Unpaged(ConversationAnswer);
export const ToolsQuery = Type.Object(
  {
    userId: Type.Optional(Type.String({ format: 'uuid', description: 'another user (needs manage_permissions)' })),
    scopes: Type.Optional(Type.String({ description: 'the agent scopes to preview' })),
  },
  { additionalProperties: false },
);
export { AnyObject };
