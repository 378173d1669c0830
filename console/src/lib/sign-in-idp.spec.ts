import { discoveryQuery, idpSignInHref } from './sign-in-idp';

const ORIGIN = 'https://custodian.example.com';
const START = `${ORIGIN}/api/v1/auth/oidc/0b7e6a2c-3c1d-4a57-9a8e-2f7d6c5b4a39/start`;

describe('sign-in page: identity provider button', () => {
  it('asks by the org of the console URL first, else by a typed email with a domain', () => {
    expect(discoveryQuery('a@example.com', '?org=0b7e6a2c-3c1d-4a57-9a8e-2f7d6c5b4a39')).toBe('org=0b7e6a2c-3c1d-4a57-9a8e-2f7d6c5b4a39');
    expect(discoveryQuery('a@example.com', '')).toBe('email=a%40example.com');
    expect(discoveryQuery('a@', '')).toBeUndefined();
    expect(discoveryQuery('a@example', '')).toBeUndefined();
    expect(discoveryQuery('alice', '')).toBeUndefined();
  });

  it('links to the start URL with session=cookie and the email as login hint', () => {
    expect(idpSignInHref({ oidc: true, startUrl: START }, 'a@example.com', ORIGIN)).toBe(
      `${START}?session=cookie&login_hint=a%40example.com`,
    );
    expect(idpSignInHref({ oidc: true, startUrl: START }, '', ORIGIN)).toBe(`${START}?session=cookie`);
  });

  it('shows no button without OIDC, and never links anywhere but this installation start route', () => {
    expect(idpSignInHref(undefined, 'a@example.com', ORIGIN)).toBeUndefined();
    expect(idpSignInHref({ oidc: false }, 'a@example.com', ORIGIN)).toBeUndefined();
    expect(
      idpSignInHref({ oidc: true, startUrl: 'https://evil.test/api/v1/auth/oidc/0b7e6a2c-3c1d-4a57-9a8e-2f7d6c5b4a39/start' }, '', ORIGIN),
    ).toBeUndefined();
    expect(idpSignInHref({ oidc: true, startUrl: `${ORIGIN}/somewhere/else` }, '', ORIGIN)).toBeUndefined();
    expect(idpSignInHref({ oidc: true, startUrl: 'javascript:alert(1)' }, '', ORIGIN)).toBeUndefined();
  });
});
