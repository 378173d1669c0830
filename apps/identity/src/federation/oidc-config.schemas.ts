import { Type, type Static } from '@sinclair/typebox';
import { PRIVATE_KEY_ALGS } from './oidc-client';

const Id = Type.String({ format: 'uuid' });
const Text = (max: number): ReturnType<typeof Type.String> =>
  Type.String({ minLength: 1, maxLength: max, pattern: '^[^\\u0000-\\u001f\\u007f]+$' });
/** A secret is given as its value (sealed with the master key) or as a reference (env:NAME, file:/path). */
const Secret = Type.Union([
  Type.Object({ value: Type.String({ minLength: 1, maxLength: 16384 }) }, { additionalProperties: false }),
  Type.Object({ reference: Type.String({ minLength: 5, maxLength: 1024 }) }, { additionalProperties: false }),
]);

export const ClaimMappingSchema = Type.Object(
  {
    claim: Type.String({ pattern: '^[A-Za-z0-9_:./-]{1,128}$' }),
    value: Text(256),
    roleId: Type.Optional(Id),
    groupIds: Type.Optional(Type.Array(Id, { maxItems: 20, uniqueItems: true })),
    permissionSetIds: Type.Optional(Type.Array(Id, { maxItems: 20, uniqueItems: true })),
  },
  { additionalProperties: false },
);

/** PUT /auth/oidc/config: the whole connection (omitted settings take their defaults; omitted secrets are kept). */
export const OidcConnectionInputSchema = Type.Object(
  {
    issuer: Type.String({ minLength: 8, maxLength: 2048 }),
    clientId: Text(255),
    clientAuth: Type.Optional(
      Type.Union([Type.Literal('client_secret_basic'), Type.Literal('client_secret_post'), Type.Literal('private_key_jwt')]),
    ),
    clientSecret: Type.Optional(Secret),
    privateKey: Type.Optional(Secret),
    privateKeyAlg: Type.Optional(Type.Union(PRIVATE_KEY_ALGS.map((a) => Type.Literal(a)))),
    scopes: Type.Optional(
      Type.Array(Type.String({ pattern: '^[\\x21\\x23-\\x5B\\x5D-\\x7E]{1,128}$' }), { maxItems: 20, uniqueItems: true }),
    ),
    enabled: Type.Optional(Type.Boolean()),
    jitProvisioning: Type.Optional(Type.Boolean()),
    linkExistingUsers: Type.Optional(Type.Boolean()),
    emailVerifiedClaim: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9_:.-]{1,64}$' })),
    allowedEmailDomains: Type.Optional(
      Type.Array(Type.String({ pattern: '^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\\.)+[a-z]{2,63}$' }), {
        maxItems: 100,
        uniqueItems: true,
      }),
    ),
    mappings: Type.Optional(Type.Array(ClaimMappingSchema, { maxItems: 100 })),
    passwordLogin: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);
export type OidcConnectionInput = Static<typeof OidcConnectionInputSchema>;

const SecretState = Type.Object(
  { set: Type.Boolean(), source: Type.Union([Type.Literal('encrypted'), Type.Literal('env'), Type.Literal('file'), Type.Null()]) },
  { additionalProperties: false },
);

/** The connection as GET and PUT answer it: never a secret, only whether and where it is set. */
export const OidcConnectionViewSchema = Type.Object(
  {
    issuer: Type.String(),
    clientId: Type.String(),
    clientAuth: Type.Union([Type.Literal('client_secret_basic'), Type.Literal('client_secret_post'), Type.Literal('private_key_jwt')]),
    privateKeyAlg: Type.Union([Type.String(), Type.Null()]),
    scopes: Type.Array(Type.String()),
    enabled: Type.Boolean(),
    jitProvisioning: Type.Boolean(),
    linkExistingUsers: Type.Boolean(),
    emailVerifiedClaim: Type.String(),
    allowedEmailDomains: Type.Array(Type.String()),
    mappings: Type.Array(ClaimMappingSchema),
    passwordLogin: Type.Boolean(),
    startUrl: Type.String(),
    redirectUri: Type.String(),
    backchannelLogoutUri: Type.String(),
    jwksUri: Type.String(),
    clientSecret: SecretState,
    privateKey: SecretState,
    version: Type.Integer(),
    updatedAt: Type.String({ format: 'date-time' }),
  },
  { additionalProperties: false },
);

export const OidcStartQuerySchema = Type.Object(
  {
    login_hint: Type.Optional(Type.String({ maxLength: 320, description: 'passed on to the identity provider' })),
    session: Type.Optional(
      Type.Literal('cookie', { description: 'a browser: the callback sets the refresh cookie and redirects to /console/' }),
    ),
  },
  { additionalProperties: false },
);

export const OidcCallbackQuerySchema = Type.Object(
  {
    code: Type.Optional(Type.String()),
    state: Type.Optional(Type.String()),
    iss: Type.Optional(Type.String()),
    error: Type.Optional(Type.String()),
    error_description: Type.Optional(Type.String()),
  },
  { additionalProperties: true },
);

export const OidcJwksSchema = Type.Object(
  { keys: Type.Array(Type.Object({}, { additionalProperties: true })) },
  { additionalProperties: false },
);

export const OidcDiscoverQuerySchema = Type.Object(
  {
    org: Type.Optional(Type.String({ maxLength: 64, description: 'an org id' })),
    email: Type.Optional(
      Type.String({ maxLength: 320, description: "an email address: its domain is looked up in the connections' allowed email domains" }),
    ),
  },
  { additionalProperties: false },
);

export const OidcDiscoverAnswerSchema = Type.Object(
  {
    oidc: Type.Boolean(),
    startUrl: Type.Optional(Type.String({ description: 'the sign-in start URL (append ?session=cookie for a browser)' })),
  },
  { additionalProperties: false },
);
