import { readFileSync } from 'node:fs';
import path from 'node:path';
import { AUDIT_EVENT_CATALOG, AuditEventSchema } from '@custodian/contracts';
import { validate } from '@custodian/platform';
import { renderAuditCatalog } from './render-catalog';

describe('audit event catalog', () => {
  it('docs/audit-events.md is the rendered catalog (regenerate with node scripts/run-ts.cjs scripts/audit-catalog.ts)', () => {
    const file = readFileSync(path.resolve(__dirname, '../../../../docs/audit-events.md'), 'utf8');
    expect(file).toBe(renderAuditCatalog());
  });

  it('covers every event type the issue names', () => {
    const required = [
      'auth.login',
      'auth.login_failed',
      'auth.logout',
      'auth.session_revoked',
      'identity.api_key.created',
      'identity.api_key.revoked',
      'auth.token_exchange',
      'objects.record.created',
      'objects.record.updated',
      'objects.record.deleted',
      'objects.record.transferred',
      'objects.record.read',
      'objects.share.granted',
      'objects.share.revoked',
      'objects.sharing_rule.changed',
      'identity.permission_set.updated',
      'identity.permission_set.assigned',
      'identity.permission_set.unassigned',
      'identity.role.updated',
      'identity.group.updated',
      'objects.metadata.changed',
      'objects.bundle.applied',
      'authz.denied',
      'agent.conversation.started',
      'agent.tool.called',
      'approvals.action.requested',
      'approvals.action.approved',
      'approvals.action.rejected',
      'approvals.action.applied',
      'approvals.action.failed',
      'approvals.action.expired',
      'audit.archived',
      'settings.changed',
    ];
    expect(required.filter((a) => !AUDIT_EVENT_CATALOG[a])).toEqual([]);
  });

  it('every action name fits the envelope, and an agent act chain is a valid actor', () => {
    for (const action of Object.keys(AUDIT_EVENT_CATALOG)) {
      const event = {
        id: '0190f0f0-0000-7000-8000-000000000000',
        orgId: null,
        occurredAt: new Date().toISOString(),
        service: 'objects',
        action,
        outcome: AUDIT_EVENT_CATALOG[action].outcomes[0],
        actor: {
          userId: '0190f0f0-0000-7000-8000-000000000001',
          agent: { clientId: 'sales-bot', name: 'Sales bot', scopes: ['data:read'], act: [{ clientId: 'orchestrator' }] },
        },
      };
      expect(validate(AuditEventSchema, event)).toMatchObject({ ok: true });
    }
  });
});
