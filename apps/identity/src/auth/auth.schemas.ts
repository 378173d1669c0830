import { Type } from '@sinclair/typebox';

export const LoginRequestSchema = Type.Object(
  {
    email: Type.String({ minLength: 3, maxLength: 320 }),
    password: Type.String({ minLength: 1, maxLength: 256 }),
    orgId: Type.Optional(Type.String({ format: 'uuid' })),
    /** `cookie`: the refresh token goes into an httpOnly cookie instead of the body (browser sessions). */
    session: Type.Optional(Type.Literal('cookie')),
  },
  { additionalProperties: false },
);

export const LogoutRequestSchema = Type.Object({}, { additionalProperties: false });

export const RefreshRequestSchema = Type.Object(
  { refreshToken: Type.String({ minLength: 1, maxLength: 512 }) },
  { additionalProperties: false },
);

/** A refresh from the cookie: the body is empty (or absent). */
export const CookieRefreshRequestSchema = Type.Object({}, { additionalProperties: false });
