import { Type, type Static } from '@sinclair/typebox';
import { defineEvent, defineRequest } from './contract';

const Id = Type.String({ format: 'uuid' });

/** What every decision point needs to know about the caller (issue #3 extends the policy part). */
export const PrincipalSnapshotSchema = Type.Object(
  {
    userId: Id,
    orgId: Id,
    email: Type.String({ maxLength: 320 }),
    sessionId: Type.Optional(Id),
    apiKeyId: Type.Optional(Id),
    capabilities: Type.Array(Type.String({ maxLength: 64 }), { maxItems: 64 }),
    roleId: Type.Union([Id, Type.Null()]),
    groupIds: Type.Array(Id, { maxItems: 10_000 }),
    policyVersion: Type.Integer({ minimum: 0 }),
  },
  { additionalProperties: false },
);
export type PrincipalSnapshot = Static<typeof PrincipalSnapshotSchema>;

/** objects/approvals/... ask identity who the caller is; identity also checks the session is live. */
export const GetPrincipalSnapshot = defineRequest({
  subject: 'identity.principal.snapshot',
  service: 'identity',
  request: Type.Object(
    { userId: Id, orgId: Id, sessionId: Type.Optional(Id), apiKeyId: Type.Optional(Id) },
    { additionalProperties: false },
  ),
  response: PrincipalSnapshotSchema,
});

export const JwkSchema = Type.Object(
  {
    kty: Type.String({ maxLength: 16 }),
    crv: Type.Optional(Type.String({ maxLength: 16 })),
    x: Type.Optional(Type.String({ maxLength: 512 })),
    kid: Type.String({ maxLength: 64 }),
    alg: Type.String({ maxLength: 16 }),
    use: Type.Optional(Type.Literal('sig')),
  },
  { additionalProperties: false },
);
export const JwksSchema = Type.Object({ keys: Type.Array(JwkSchema, { maxItems: 32 }) }, { additionalProperties: false });
export type Jwks = Static<typeof JwksSchema>;

/** The public signing keys; every service verifies access tokens locally with them. */
export const GetJwks = defineRequest({
  subject: 'identity.jwks.get',
  service: 'identity',
  request: Type.Object({}, { additionalProperties: false }),
  response: JwksSchema,
});

/** Published after every change that can alter a decision (R10). */
export const PolicyVersionChanged = defineEvent({
  subject: 'evt.identity.policy-version',
  payload: Type.Object(
    { orgId: Id, policyVersion: Type.Integer({ minimum: 0 }), reason: Type.String({ maxLength: 64 }) },
    { additionalProperties: false },
  ),
});
