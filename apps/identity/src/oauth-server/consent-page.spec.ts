import { escapeHtml, renderConsentPage } from './consent-page';
import { displayName } from './oauth-consents.service';

describe('the consent page', () => {
  const page = (clientName: string): string =>
    renderConsentPage({
      action: '/oauth/interaction/abc',
      clientName,
      clientId: 'mcp_x',
      redirectHost: 'evil.example"><script>',
      resource: 'https://c.example/mcp',
      scopes: ['data:read', 'data:write'],
      email: '"><img src=x>',
      error: '<b>x</b>',
    }).html;

  it('escapes every value a client or user controls', () => {
    const html = page('<script>alert(1)</script> & "quotes"');
    expect(html).not.toMatch(/<script>|<img|<b>x/);
    expect(html).toContain('&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;quotes&quot;');
    expect(html).toContain('evil.example&quot;&gt;&lt;script&gt;');
  });

  it('lists each requested scope with what it allows, ticked', () => {
    const html = page('Claude');
    expect(html).toContain('value="data:read" checked');
    expect(html).toContain('a person approves each one');
    expect(html).toContain('name="scopes_chosen"');
  });

  it('gives every page its own style nonce', () => {
    const a = renderConsentPage({ action: '/', clientName: 'a', clientId: 'b', redirectHost: 'h', resource: 'r', scopes: [] });
    const b = renderConsentPage({ action: '/', clientName: 'a', clientId: 'b', redirectHost: 'h', resource: 'r', scopes: [] });
    expect(a.nonce).not.toBe(b.nonce);
    expect(a.html).toContain(`nonce="${a.nonce}"`);
  });

  it('offers the identity-provider sign-in (a GET to this interaction only) beside the password', () => {
    const html = page('Claude');
    expect(html).toContain('name="password"');
    expect(html).toContain('<form method="get" action="/oauth/interaction/abc/idp">');
    expect(html).toContain('name="org"');
  });

  it('after an identity-provider sign-in asks for consent only: no password, no second sign-in form', () => {
    const html = renderConsentPage({
      action: '/oauth/interaction/abc',
      clientName: 'Claude',
      clientId: 'mcp_x',
      redirectHost: 'h',
      resource: 'r',
      scopes: ['data:read'],
      federated: true,
    }).html;
    expect(html).not.toContain('name="password"');
    expect(html).not.toContain('/idp');
    expect(html).toContain('value="allow">Allow</button>');
    expect(html).toContain('value="deny"');
  });

  it('escapes the five HTML metacharacters', () => {
    expect(escapeHtml(`<>&"'`)).toBe('&lt;&gt;&amp;&quot;&#39;');
  });
});

describe('a client display name', () => {
  it('takes control characters out, trims, caps at 200 and falls back to the client id', () => {
    expect(displayName('Claude\u0000\nDesktop\u2028', 'mcp_1')).toBe('Claude  Desktop');
    expect(displayName('x'.repeat(500), 'mcp_1')).toHaveLength(200);
    expect(displayName('   ', 'mcp_1')).toBe('mcp_1');
    expect(displayName(42, 'mcp_1')).toBe('mcp_1');
  });
});
