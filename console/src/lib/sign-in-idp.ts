/** The sign-in page's "Sign in with your identity provider" (docs/sso.md, OIDC sign-in): pure logic. */

/** The answer of `GET /api/v1/auth/oidc/discover`. */
export interface OidcDiscovery {
  oidc: boolean;
  startUrl?: string;
}

const START_PATH = /^\/api\/v1\/auth\/oidc\/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\/start$/;

/**
 * The discovery query for what the page knows: an org id from the console's own URL (`?org=<id>`,
 * for links an admin hands out) wins; otherwise the typed email, once it has a domain.
 */
export function discoveryQuery(email: string, search: string): string | undefined {
  const org = new URLSearchParams(search).get('org')?.trim();
  if (org) return `org=${encodeURIComponent(org)}`;
  const at = email.lastIndexOf('@');
  const domain = at > 0 ? email.slice(at + 1).trim() : '';
  return /^[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$/.test(domain) ? `email=${encodeURIComponent(email.trim())}` : undefined;
}

/**
 * Where the button leads: the org's start URL with `session=cookie` (the sign-in ends with the
 * console's refresh cookie and a redirect back here) and the email as login hint. Only a start URL
 * of this installation's sign-in route on `origin` is followed — never another address.
 */
export function idpSignInHref(answer: OidcDiscovery | undefined, email: string, origin: string): string | undefined {
  if (!answer?.oidc || typeof answer.startUrl !== 'string') return undefined;
  let url: URL;
  try {
    url = new URL(answer.startUrl, origin);
  } catch {
    return undefined;
  }
  if (url.origin !== origin || !START_PATH.test(url.pathname)) return undefined;
  const q = new URLSearchParams({ session: 'cookie' });
  if (email.includes('@')) q.set('login_hint', email.trim());
  return `${url.origin}${url.pathname}?${q}`;
}
