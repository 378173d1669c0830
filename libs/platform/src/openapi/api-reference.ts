import type { OpenApiDocument, OpenApiOperation } from './openapi-document';

const STYLE = `body{font:14px/1.45 system-ui,sans-serif;margin:0;color:#1b1b1f;background:#fff}
header{padding:16px 24px;border-bottom:1px solid #ddd}main{padding:0 24px 48px;max-width:1100px}
nav{columns:3;font-size:13px;padding:12px 24px;border-bottom:1px solid #eee}nav a{display:block;color:#1f4fa8;text-decoration:none}
section.op{border:1px solid #ddd;border-radius:6px;margin:16px 0;padding:8px 14px}
.m{display:inline-block;min-width:58px;font-weight:700;font-family:ui-monospace,monospace}.p{font-family:ui-monospace,monospace}
.get{color:#0a6b2d}.post{color:#1f4fa8}.put,.patch{color:#8a5a00}.delete{color:#a01d1d}
pre{background:#f6f6f8;padding:8px;overflow:auto;max-height:320px;font-size:12px}code{font-family:ui-monospace,monospace}
table{border-collapse:collapse}td,th{border:1px solid #e2e2e2;padding:2px 8px;text-align:left;vertical-align:top}
details summary{cursor:pointer}.policy{font-size:13px;color:#444}`;

function esc(value: unknown): string {
  return String(value).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function operation(path: string, method: string, op: OpenApiOperation): string {
  const policy = op['x-custodian-policy'] as { access: string; capabilities?: string[]; reason?: string };
  const who =
    policy.access === 'public'
      ? 'public'
      : `signed in${policy.capabilities?.length ? `; capabilities: ${policy.capabilities.join(', ')}` : ''}${policy.reason ? ` (${policy.reason})` : ''}`;
  const params = (op.parameters ?? []) as Array<{ name: string; in: string; required?: boolean; schema?: unknown }>;
  const rows = Object.entries(op.responses)
    .map(([status, r]) => {
      const codes = (r['x-custodian-problem-codes'] as string[] | undefined) ?? [];
      const content = r.content as Record<string, { schema?: unknown }> | undefined;
      const schema = !codes.length && content ? Object.values(content)[0]?.schema : undefined;
      return `<tr><td>${esc(status)}</td><td>${codes.length ? `<code>${esc(codes.join(', '))}</code>` : esc(r.description)}${
        schema ? `<details><summary>schema</summary><pre>${esc(JSON.stringify(schema, null, 2))}</pre></details>` : ''
      }</td></tr>`;
    })
    .join('');
  const body = op.requestBody as { content: Record<string, { schema: unknown }> } | undefined;
  return `<section class="op" id="${esc(op.operationId)}"><h3><span class="m ${method}">${esc(method.toUpperCase())}</span> <span class="p">${esc(path)}</span></h3>
${op.summary ? `<p>${esc(op.summary)}</p>` : ''}<p class="policy">operationId <code>${esc(op.operationId)}</code> · access: ${esc(who)}</p>
${params.length ? `<table><tr><th>parameter</th><th>in</th><th>required</th><th>schema</th></tr>${params.map((p) => `<tr><td><code>${esc(p.name)}</code></td><td>${esc(p.in)}</td><td>${p.required ? 'yes' : 'no'}</td><td><code>${esc(JSON.stringify(p.schema))}</code></td></tr>`).join('')}</table>` : ''}
${body ? `<details><summary>request body (${esc(Object.keys(body.content).join(', '))})</summary><pre>${esc(JSON.stringify(Object.values(body.content)[0]?.schema, null, 2))}</pre></details>` : ''}
<table><tr><th>status</th><th>answer</th></tr>${rows}</table></section>`;
}

/** The API reference as one static HTML page: no script, no font or style from elsewhere (strict CSP). */
export function renderApiReference(doc: OpenApiDocument): { html: string; style: string } {
  const ops = Object.entries(doc.paths).flatMap(([path, methods]) => Object.entries(methods).map(([method, op]) => ({ path, method, op })));
  const html = `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${esc(doc.info.title)} reference</title><style>${STYLE}</style></head><body>
<header><h1>${esc(doc.info.title)} ${esc(doc.info.version)}</h1><p>${esc(doc.info.description)} The machine-readable document: <a href="openapi.json">openapi.json</a>. ${ops.length} operations.</p></header>
<nav>${ops.map(({ path, method, op }) => `<a href="#${esc(op.operationId)}">${esc(method.toUpperCase())} ${esc(path)}</a>`).join('')}</nav>
<main>${ops.map(({ path, method, op }) => operation(path, method, op)).join('\n')}</main></body></html>`;
  return { html, style: STYLE };
}
