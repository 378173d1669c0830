import { AUDIT_EVENT_CATALOG, AuditEventSchema } from '@custodian/contracts';

/** Serializes a TypeBox schema as plain JSON Schema (TypeBox's symbol keys are not JSON). */
function jsonSchema(schema: unknown): unknown {
  return JSON.parse(JSON.stringify(schema)) as unknown;
}

/** docs/audit-events.md, rendered from the catalog in libs/contracts (a unit test keeps the file equal to this). */
export function renderAuditCatalog(): string {
  const out: string[] = [];
  out.push(
    '# Audit event catalog',
    '',
    '<!-- Generated from AUDIT_EVENT_CATALOG in libs/contracts/src/audit.contracts.ts by',
    '     `node scripts/run-ts.cjs scripts/audit-catalog.ts`. Do not edit by hand. -->',
    '',
    'Every audit event has the same envelope (below): a unique, time-ordered id (UUIDv7), the',
    'organization, the time, the producing service, the action, the outcome, the actor, the target,',
    'the request id and action-specific `details`. The audit store chains events per organization',
    '(docs/audit.md).',
    '',
    '- **Actor**: `userId`, `sessionId` or `apiKeyId`, and for delegated (agent) tokens `agent`:',
    '  `{ clientId, name, scopes, act: [{ clientId, name }] }` — the agent acting for the user, and',
    '  in `act` any earlier actors of the delegation chain (RFC 8693 `act`, outermost first); plus',
    '  `ip` and `userAgent`.',
    '- **Secrets** (A5): values under keys that name a secret (`password`, `token`, `secret`,',
    '  `apiKey`, `authorization`, `cookie`, `credential(s)`, `privateKey`, … at any depth) are',
    '  replaced by a keyed hash `hmac-sha256:<64 hex>` (HMAC-SHA256 under a key derived from the',
    '  master key) by the outbox writer, and again by the audit store for any producer that missed one.',
    '- **Control characters** (C0, DEL, C1, bidi overrides, lone surrogates) in any string, keys',
    '  included, are stored encoded as the visible text `\\uXXXX`.',
    '- `details` schemas are open: producers may add context; the named fields have the types shown.',
    '',
    '## Envelope',
    '',
    '```json',
    JSON.stringify({ $id: 'custodian:audit-event', ...(jsonSchema(AuditEventSchema) as object) }, null, 2),
    '```',
    '',
    '## Events',
    '',
    '| action | what | service | target type | outcomes |',
    '|---|---|---|---|---|',
  );
  const actions = Object.keys(AUDIT_EVENT_CATALOG).sort();
  for (const action of actions) {
    const e = AUDIT_EVENT_CATALOG[action];
    out.push(`| \`${action}\` | ${e.title} | ${e.service} | ${e.target ?? '—'} | ${e.outcomes.join(', ')} |`);
  }
  out.push('');
  for (const action of actions) {
    const e = AUDIT_EVENT_CATALOG[action];
    const schema = {
      $id: `custodian:audit-event:${action}`,
      allOf: [
        { $ref: 'custodian:audit-event' },
        {
          properties: {
            action: { const: action },
            outcome: { enum: e.outcomes },
            ...(e.target && /^[a-z_]+$/.test(e.target) ? { target: { properties: { type: { const: e.target } } } } : {}),
            details: jsonSchema(e.details),
          },
        },
      ],
    };
    out.push(`### \`${action}\` — ${e.title}`, '', '```json', JSON.stringify(schema, null, 2), '```', '');
  }
  return out.join('\n');
}
