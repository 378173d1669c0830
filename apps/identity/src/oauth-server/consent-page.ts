import { randomBytes } from 'node:crypto';
import type { ServerResponse } from 'node:http';

/** What each agent scope lets the client do for the user (never more than the user may, R7). */
export const SCOPE_DESCRIPTIONS: Record<string, string> = {
  'data:read': 'Read the records you can read (never a field hidden from you)',
  'data:write': 'Propose changes to records; a person approves each one before it happens',
  'actions:execute': 'Propose running declared actions; a person approves each one',
  'metadata:write': 'Propose changes to object definitions; a person approves each one',
};

export interface ConsentPageModel {
  action: string;
  clientName: string;
  clientId: string;
  redirectHost: string;
  resource: string;
  scopes: string[];
  email?: string;
  error?: string;
  /** Signed in already through the org's identity provider (OIDC): the page only asks for consent. */
  federated?: boolean;
}

export function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/**
 * Headers of every page this server renders: no caching (they carry a sign-in form), never framed
 * (clickjacking of the Allow button), only the page's own inline style. No form-action: after the
 * POST the browser follows redirects back to the client's own redirect URI, which a form-action
 * list would block in some browsers.
 */
export function pageHeaders(res: ServerResponse, nonce: string): void {
  res.setHeader('content-type', 'text/html; charset=utf-8');
  res.setHeader('cache-control', 'no-store');
  res.setHeader('pragma', 'no-cache');
  res.setHeader('x-frame-options', 'DENY');
  res.setHeader('x-content-type-options', 'nosniff');
  res.setHeader('referrer-policy', 'no-referrer');
  res.setHeader('content-security-policy', `default-src 'none'; style-src 'nonce-${nonce}'; base-uri 'none'; frame-ancestors 'none'`);
}

function layout(nonce: string, title: string, body: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)} · Custodian</title>
<style nonce="${nonce}">
body{font-family:system-ui,sans-serif;max-width:34rem;margin:3rem auto;padding:0 1rem;color:#1b1b1f}
h1{font-size:1.3rem}.box{border:1px solid #ccd;border-radius:.5rem;padding:1rem;margin:1rem 0}
label{display:block;margin:.6rem 0 .2rem}input[type=email],input[type=password],input[type=text]{width:100%;padding:.45rem;box-sizing:border-box}
.scope{margin:.4rem 0}.scope small{display:block;color:#555;margin-left:1.6rem}.error{color:#a40000;font-weight:600}
.buttons{display:flex;gap:.8rem;margin-top:1rem}button{padding:.5rem 1.2rem}code{font-size:.9em}
</style></head><body>${body}</body></html>`;
}

/** The sign-in and consent page of one authorization request. Every value from the client is escaped. */
export function renderConsentPage(model: ConsentPageModel): { html: string; nonce: string } {
  const nonce = randomBytes(16).toString('base64');
  const scopes = model.scopes
    .map(
      (s) => `<div class="scope"><label><input type="checkbox" name="scope" value="${escapeHtml(s)}" checked> <code>${escapeHtml(s)}</code>
<small>${escapeHtml(SCOPE_DESCRIPTIONS[s] ?? '')}</small></label></div>`,
    )
    .join('\n');
  const body = `<h1>Allow <strong>${escapeHtml(model.clientName)}</strong> to act for you?</h1>
<div class="box">
<p><strong>${escapeHtml(model.clientName)}</strong> (client <code>${escapeHtml(model.clientId)}</code>) asks to use Custodian's MCP
endpoint <code>${escapeHtml(model.resource)}</code> as you. It will see and do only what you may, narrowed to:</p>
<form method="post" action="${escapeHtml(model.action)}">
<input type="hidden" name="scopes_chosen" value="1">
${scopes}
<p>After you answer, your browser returns to <code>${escapeHtml(model.redirectHost)}</code>.</p>
${model.error ? `<p class="error" role="alert">${escapeHtml(model.error)}</p>` : ''}
${
  model.federated
    ? `<p>You are signed in through your organization's identity provider.</p>
<div class="buttons"><button type="submit" name="decision" value="allow">Allow</button>`
    : `<label for="email">Email</label><input id="email" type="email" name="email" autocomplete="username" required value="${escapeHtml(model.email ?? '')}">
<label for="password">Password</label><input id="password" type="password" name="password" autocomplete="current-password">
<label for="orgId">Organization id (optional: the one to act in)</label><input id="orgId" type="text" name="orgId" autocomplete="off">
<div class="buttons"><button type="submit" name="decision" value="allow">Sign in and allow</button>`
}
<button type="submit" name="decision" value="deny" formnovalidate>Deny</button></div>
</form>${
    model.federated
      ? ''
      : `
<form method="get" action="${escapeHtml(model.action)}/idp">
<label for="org">Or sign in through your organization's identity provider — organization id</label><input id="org" type="text" name="org" autocomplete="off" required>
<label for="login_hint">Email (optional, passed to the identity provider)</label><input id="login_hint" type="email" name="login_hint" autocomplete="username">
<div class="buttons"><button type="submit">Sign in with your identity provider</button></div>
</form>`
  }</div>
<p><small>You can withdraw this later: <code>DELETE /api/v1/oauth/consents/&lt;id&gt;</code>, or end the session it created.</small></p>`;
  return { html: layout(nonce, `Allow ${model.clientName}`, body), nonce };
}

/** A plain error page (oidc-provider's errors before a redirect to the client is possible, and our own). */
export function renderErrorPage(error: string, description?: string): { html: string; nonce: string } {
  const nonce = randomBytes(16).toString('base64');
  const body = `<h1>Authorization error</h1><p class="error"><code>${escapeHtml(error)}</code></p>${description ? `<p>${escapeHtml(description)}</p>` : ''}`;
  return { html: layout(nonce, 'Authorization error', body), nonce };
}

export function sendPage(res: ServerResponse, status: number, page: { html: string; nonce: string }): void {
  res.statusCode = status;
  pageHeaders(res, page.nonce);
  res.end(page.html);
}
