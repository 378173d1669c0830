import { Type, type Static } from '@sinclair/typebox';
import { FIELD_NAME_PATTERN, OBJECT_NAME_PATTERN } from '../metadata/object-definition.schema';

/**
 * A declared action on an object (bundle `actions`, docs/objects.md "Bundles"): a named, labelled
 * update that sets fixed values. Its fields and values are checked against the object's definition when applied.
 * Running actions (MCP `run_action`, approvals) is built elsewhere.
 */
export const ActionDefinitionSchema = Type.Object(
  {
    name: Type.String({ pattern: FIELD_NAME_PATTERN }),
    object: Type.String({ pattern: OBJECT_NAME_PATTERN }),
    label: Type.String({ minLength: 1, maxLength: 200 }),
    description: Type.Optional(Type.String({ maxLength: 2000 })),
    kind: Type.Literal('update'),
    /** Field → value the action writes; each value is validated like a record value of that field. */
    set: Type.Record(Type.String({ pattern: FIELD_NAME_PATTERN }), Type.Unknown(), { minProperties: 1, maxProperties: 50 }),
    /** Whether running it waits for approval (approval policies may require it anyway). Default false. */
    requiresApproval: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);
export type ActionDefinitionInput = Static<typeof ActionDefinitionSchema>;
export type ActionDefinition = ActionDefinitionInput & { requiresApproval: boolean };

export function normaliseAction(input: ActionDefinitionInput): ActionDefinition {
  return { ...input, requiresApproval: input.requiresApproval ?? false };
}
