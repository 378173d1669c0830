import { Type, type Static } from '@sinclair/typebox';
import { defineEvent, defineRequest, SERVICE_NAMES } from './contract';
import { AuditReaderSchema } from './audit-visibility.contracts';

const AuditActorRefSchema = Type.Object(
  { clientId: Type.String({ maxLength: 128 }), name: Type.Optional(Type.String({ maxLength: 200 })) },
  { additionalProperties: false },
);

export const AuditAgentSchema = Type.Object(
  {
    clientId: Type.String({ maxLength: 128 }),
    name: Type.Optional(Type.String({ maxLength: 200 })),
    scopes: Type.Optional(Type.Array(Type.String({ maxLength: 64 }), { maxItems: 32 })),
    /** Earlier actors in a delegation chain (an agent acting through another), outermost first. */
    act: Type.Optional(Type.Array(AuditActorRefSchema, { maxItems: 8 })),
  },
  { additionalProperties: false },
);

/** One audit event as written to a service's outbox and relayed to the audit service. */
export const AuditEventSchema = Type.Object(
  {
    id: Type.String({ format: 'uuid' }),
    orgId: Type.Union([Type.String({ format: 'uuid' }), Type.Null()]),
    occurredAt: Type.String({ format: 'date-time' }),
    service: Type.String({ maxLength: 32 }),
    action: Type.String({ pattern: '^[a-z][a-z0-9_.]*$', maxLength: 96 }),
    outcome: Type.Union([Type.Literal('success'), Type.Literal('failure'), Type.Literal('denied')]),
    actor: Type.Object(
      {
        userId: Type.Optional(Type.String({ format: 'uuid' })),
        sessionId: Type.Optional(Type.String({ format: 'uuid' })),
        apiKeyId: Type.Optional(Type.String({ format: 'uuid' })),
        /** Set when an agent acted for the user (delegated token): the agent and its act chain (RFC 8693 `act`, outermost first). */
        agent: Type.Optional(AuditAgentSchema),
        ip: Type.Optional(Type.String({ maxLength: 64 })),
        userAgent: Type.Optional(Type.String({ maxLength: 512 })),
      },
      { additionalProperties: false },
    ),
    target: Type.Optional(
      Type.Object(
        { type: Type.String({ maxLength: 64 }), id: Type.Optional(Type.String({ maxLength: 128 })) },
        { additionalProperties: false },
      ),
    ),
    requestId: Type.Optional(Type.String({ maxLength: 128 })),
    details: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
  },
  { additionalProperties: false },
);
export type AuditEvent = Static<typeof AuditEventSchema>;

export const AuditEventRecorded = defineEvent({ subject: 'evt.audit.recorded', payload: AuditEventSchema });

// ---------------------------------------------------------------------------------------------
// The event catalog (docs/audit-events.md is rendered from it; a test keeps the two equal).
// Details schemas are open (additional properties allowed) so a producer can add context, but
// the named fields have these types. Secrets never appear: the outbox writer and the store
// replace secret-looking values with keyed hashes (`hmac-sha256:<hex>`).
// ---------------------------------------------------------------------------------------------

const Id = Type.String({ format: 'uuid' });
const Str = (maxLength = 200): ReturnType<typeof Type.String> => Type.String({ maxLength });
const KeyedHash = Type.String({ pattern: '^hmac-sha256:[0-9a-f]{64}$', description: 'keyed hash of a secret (A5)' });
const FieldDiff = Type.Record(
  Type.String({ maxLength: 64 }),
  Type.Object({ from: Type.Unknown(), to: Type.Unknown() }, { additionalProperties: false }),
  { description: 'changed fields only; fields the reader may not see are absent' },
);
const Layer = Type.Union(
  [
    'tenant',
    'capability',
    'app',
    'object_permission',
    'field_security',
    'ownership',
    'sharing_model',
    'hierarchy',
    'sharing_rule',
    'explicit_share',
    'view_all',
    'agent_scope',
    'approval',
    'tool',
  ].map((l) => Type.Literal(l)),
);
/** The credential an API key was created with (a session or another key). */
const CreatedWith = Type.Object(
  {
    kind: Type.Union([Type.Literal('session'), Type.Literal('api_key'), Type.Literal('unknown')]),
    sessionId: Type.Optional(Id),
    apiKeyId: Type.Optional(Id),
  },
  { additionalProperties: false },
);
const open = (props: Parameters<typeof Type.Object>[0]): ReturnType<typeof Type.Object> =>
  Type.Object(props, { additionalProperties: true });

export interface AuditCatalogEntry {
  title: string;
  service: 'identity' | 'objects' | 'agent-gateway' | 'approvals' | 'audit' | 'any';
  target?: string;
  outcomes: ReadonlyArray<'success' | 'failure' | 'denied'>;
  details: ReturnType<typeof Type.Object>;
}

const change = (what: string, target: string, service: AuditCatalogEntry['service'] = 'identity'): AuditCatalogEntry => ({
  title: what,
  service,
  target,
  outcomes: ['success'],
  details: open({ name: Type.Optional(Str()), changes: Type.Optional(FieldDiff) }),
});

export const AUDIT_EVENT_CATALOG: Readonly<Record<string, AuditCatalogEntry>> = {
  'auth.login': {
    title: 'Login',
    service: 'identity',
    target: 'session',
    outcomes: ['success'],
    details: open({ method: Type.Optional(Str(32)) }),
  },
  'auth.login_failed': {
    title: 'Login failed',
    service: 'identity',
    target: 'user',
    outcomes: ['failure'],
    details: open({ reason: Type.Optional(Str(64)), email: Type.Optional(Str(320)) }),
  },
  'auth.login_locked': {
    title: 'Login refused by lockout/backoff',
    service: 'identity',
    target: 'user',
    outcomes: ['denied'],
    details: open({}),
  },
  'auth.logout': { title: 'Logout', service: 'identity', target: 'session', outcomes: ['success'], details: open({}) },
  'auth.logout_all': { title: 'Logout of every session', service: 'identity', target: 'user', outcomes: ['success'], details: open({}) },
  'auth.session_revoked': {
    title: 'Session revoked',
    service: 'identity',
    target: 'session',
    outcomes: ['success'],
    details: open({ reason: Type.Optional(Str(64)) }),
  },
  'auth.refresh': {
    title: 'Refresh token rotated',
    service: 'identity',
    target: 'session',
    outcomes: ['success', 'failure'],
    details: open({}),
  },
  'auth.refresh_grace': {
    title: 'Refresh token presented again within the grace window: its unused successor answered (family kept)',
    service: 'identity',
    target: 'session',
    outcomes: ['success'],
    details: open({ previousSessionId: Type.Optional(Id), graceSeconds: Type.Optional(Type.Integer()) }),
  },
  'auth.refresh_reused': {
    title: 'Rotated refresh token reused (family revoked)',
    service: 'identity',
    target: 'session',
    outcomes: ['denied'],
    details: open({ token: Type.Optional(KeyedHash) }),
  },
  'auth.oidc_logout': {
    title: 'OIDC back-channel logout: the sessions that sign-ins of the IdP subject (or IdP session) started are ended',
    service: 'identity',
    target: 'oidc_subject',
    outcomes: ['success'],
    details: open({
      issuer: Type.Optional(Str(2048)),
      subject: Type.Optional(Str(255)),
      sid: Type.Optional(Str(255)),
      revokedSessions: Type.Optional(Type.Integer()),
    }),
  },
  'auth.token_exchange': {
    title: 'Token exchanged for an agent (RFC 8693)',
    service: 'identity',
    target: 'user',
    outcomes: ['success', 'denied'],
    details: open({ clientId: Type.Optional(Str(128)), scopes: Type.Optional(Type.Array(Str(64))) }),
  },
  'auth.password_changed': { title: 'Password changed', service: 'identity', target: 'user', outcomes: ['success'], details: open({}) },
  'auth.password_change_failed': {
    title: 'Password change failed',
    service: 'identity',
    target: 'user',
    outcomes: ['failure'],
    details: open({}),
  },
  'auth.password_change_locked': {
    title: 'Password change refused by lockout/backoff (wrong current passwords)',
    service: 'identity',
    target: 'user',
    outcomes: ['denied'],
    details: open({ retryAfterSeconds: Type.Optional(Type.Integer()) }),
  },
  'oauth.client_registered': {
    title: 'MCP client registered with the OAuth server (RFC 7591 dynamic registration)',
    service: 'identity',
    target: 'oauth_client',
    outcomes: ['success'],
    details: open({ clientName: Type.Optional(Str(200)), redirectUris: Type.Optional(Type.Array(Str(200))) }),
  },
  'oauth.consent_granted': {
    title: 'User signed in on the consent page and allowed an MCP client to act for them (the grant is bound to a new session)',
    service: 'identity',
    target: 'oauth_consent',
    outcomes: ['success'],
    details: open({ clientId: Type.Optional(Str(128)), clientName: Type.Optional(Str(200)), scopes: Type.Optional(Type.Array(Str(64))) }),
  },
  'oauth.consent_denied': {
    title: 'Authorization of an MCP client declined, or refused (the user lacks agent_access)',
    service: 'identity',
    target: 'oauth_client',
    outcomes: ['denied'],
    details: open({ reason: Type.Optional(Str(64)) }),
  },
  'oauth.consent_revoked': {
    title: 'User withdrew a consent (its session revoked, its refresh tokens refused)',
    service: 'identity',
    target: 'oauth_consent',
    outcomes: ['success'],
    details: open({ clientId: Type.Optional(Str(128)) }),
  },
  'oauth.token_issued': {
    title: 'OAuth server issued an access token to an MCP client (authorization code or refresh)',
    service: 'identity',
    target: 'oauth_consent',
    outcomes: ['success'],
    details: open({ grantType: Type.Optional(Str(64)), clientId: Type.Optional(Str(128)), scope: Type.Optional(Str(512)) }),
  },
  'oauth.token_revoked': {
    title: 'MCP client revoked its token (RFC 7009): the grant and its session end',
    service: 'identity',
    target: 'oauth_consent',
    outcomes: ['success'],
    details: open({ clientId: Type.Optional(Str(128)) }),
  },
  'oauth.token_reused': {
    title: 'A used OAuth refresh token or authorization code presented again: the grant and its session end',
    service: 'identity',
    target: 'oauth_consent',
    outcomes: ['denied'],
    details: open({ clientId: Type.Optional(Str(128)) }),
  },
  'oauth.grant_ended': {
    title: 'OAuth server ended a grant for another reason: its session ends',
    service: 'identity',
    target: 'oauth_consent',
    outcomes: ['success'],
    details: open({ clientId: Type.Optional(Str(128)) }),
  },
  'identity.api_key.created': {
    title: 'API key created',
    service: 'identity',
    target: 'api_key',
    outcomes: ['success'],
    details: open({
      prefix: Type.Optional(Str(32)),
      scopes: Type.Optional(Type.Array(Str(64))),
      expiresAt: Type.Optional(Str(40)),
      createdWith: Type.Optional(CreatedWith),
    }),
  },
  'identity.api_key.denied': {
    title: 'API key refused: scopes beyond the creating credential, outliving the creating key, or an agent',
    service: 'identity',
    target: 'api_key',
    outcomes: ['denied'],
    details: open({
      beyond: Type.Optional(Type.Array(Str(64))),
      reason: Type.Optional(Str(64)),
      createdWith: Type.Optional(CreatedWith),
    }),
  },
  'identity.api_key.revoked': {
    title: 'API key revoked',
    service: 'identity',
    target: 'api_key',
    outcomes: ['success'],
    details: open({}),
  },
  'identity.bootstrapped': {
    title: 'First start: organization and administrator created',
    service: 'identity',
    target: 'org',
    outcomes: ['success'],
    details: open({}),
  },
  'identity.org.created': change('Organization created', 'org'),
  'identity.org.updated': change('Organization changed', 'org'),
  'identity.user.created': change('User created', 'user'),
  'identity.user.updated': change('User changed (incl. deactivation)', 'user'),
  'identity.user.password_reset_denied': {
    title: 'Password reset refused: the user holds capabilities the caller does not',
    service: 'identity',
    target: 'user',
    outcomes: ['denied'],
    details: open({ reason: Type.Optional(Str(64)), capabilities: Type.Optional(Type.Array(Str(64))) }),
  },
  'identity.member.added': change('Member added to the organization', 'membership'),
  'identity.member.updated': change('Membership changed', 'membership'),
  'identity.member.removed': change('Member removed', 'membership'),
  'identity.invitation.created': {
    title: 'Invitation to join the organization created or renewed (same details whether or not the address has an account)',
    service: 'identity',
    target: 'invitation',
    outcomes: ['success'],
    details: open({ via: Type.Optional(Str(16)) }),
  },
  'identity.invitation.accepted': {
    title: 'Invitation accepted by the invited user (membership created)',
    service: 'identity',
    target: 'invitation',
    outcomes: ['success'],
    details: open({ userId: Type.Optional(Id), invitedBy: Type.Optional(Id), withheld: Type.Optional(Type.Array(Str(64))) }),
  },
  'identity.invitation.declined': {
    title: 'Invitation declined by the invited user',
    service: 'identity',
    target: 'invitation',
    outcomes: ['success'],
    details: open({ userId: Type.Optional(Id) }),
  },
  'identity.invitation.revoked': change('Invitation withdrawn by the organization', 'invitation'),
  'identity.role.created': change('Role created', 'role'),
  'identity.role.updated': change('Role changed (incl. its place in the tree)', 'role'),
  'identity.role.deleted': change('Role deleted', 'role'),
  'identity.group.created': change('Group created', 'group'),
  'identity.group.updated': change('Group changed', 'group'),
  'identity.group.deleted': change('Group deleted', 'group'),
  'identity.group.member_added': change('Group member added', 'group'),
  'identity.group.member_removed': change('Group member removed', 'group'),
  'identity.scim.user.updated': change(
    "A user's SCIM attributes set or changed by the identity provider (userName, externalId, name)",
    'user',
  ),
  'identity.scim.group.updated': change("A group's SCIM externalId set or changed by the identity provider", 'group'),
  'identity.oidc.connection_changed': {
    title: "The org's OIDC identity provider connection set or changed (secrets only as set/cleared and their source)",
    service: 'identity',
    target: 'oidc_connection',
    outcomes: ['success'],
    details: open({
      before: Type.Optional(Type.Unknown()),
      after: Type.Optional(Type.Unknown()),
      secrets: Type.Optional(Type.Array(Type.Unknown())),
    }),
  },
  'identity.oidc.connection_deleted': change("The org's OIDC identity provider connection and its secrets removed", 'oidc_connection'),
  'identity.oidc.connection_denied': {
    title: 'OIDC connection refused: its mappings would grant capabilities the writer does not hold',
    service: 'identity',
    target: 'oidc_connection',
    outcomes: ['denied'],
    details: open({ reason: Type.Optional(Str(64)), capabilities: Type.Optional(Type.Array(Str(64))) }),
  },
  'identity.oidc.identity_linked': {
    title: 'An identity of the IdP (issuer + subject) linked to an account: a JIT-created one or an existing member by verified email',
    service: 'identity',
    target: 'user',
    outcomes: ['success'],
    details: open({ issuer: Type.Optional(Str(2048)), subject: Type.Optional(Str(255)), linkedBy: Type.Optional(Str(16)) }),
  },
  'identity.permission_set.created': change('Permission set created', 'permission_set'),
  'identity.permission_set.updated': change('Permission set changed', 'permission_set'),
  'identity.permission_set.deleted': change('Permission set deleted', 'permission_set'),
  'identity.permission_set.assigned': {
    title: 'Permission set assigned',
    service: 'identity',
    target: 'permission_set',
    outcomes: ['success'],
    details: open({ assignee: Type.Optional(open({ type: Str(16), id: Id })) }),
  },
  'identity.permission_set.unassigned': {
    title: 'Permission set unassigned',
    service: 'identity',
    target: 'permission_set',
    outcomes: ['success'],
    details: open({ assignee: Type.Optional(open({ type: Str(16), id: Id })) }),
  },
  'identity.signing_key.rotated': change('Token signing key rotated', 'signing_key'),
  'identity.signing_key.retired': change('Token signing key retired', 'signing_key'),
  'objects.record.created': {
    title: 'Record created',
    service: 'objects',
    target: '<object name>',
    outcomes: ['success'],
    details: open({ fields: Type.Optional(FieldDiff) }),
  },
  'objects.record.updated': {
    title: 'Record updated (field diff)',
    service: 'objects',
    target: '<object name>',
    outcomes: ['success'],
    details: open({ changes: FieldDiff, version: Type.Optional(Type.Integer()) }),
  },
  'objects.record.deleted': {
    title: 'Record deleted',
    service: 'objects',
    target: '<object name>',
    outcomes: ['success'],
    details: open({}),
  },
  'objects.record.transferred': {
    title: 'Record transferred to a new owner',
    service: 'objects',
    target: '<object name>',
    outcomes: ['success'],
    details: open({ fromOwner: Id, toOwner: Id }),
  },
  'objects.record.read': {
    title: 'Record read (objects with auditReads)',
    service: 'objects',
    target: '<object name>',
    outcomes: ['success'],
    details: open({ fields: Type.Optional(Type.Array(Str(64))) }),
  },
  'objects.record.file.uploaded': {
    title: 'File uploaded to a file field (replacing any earlier file)',
    service: 'objects',
    target: '<object name>',
    outcomes: ['success'],
    details: open({ changes: FieldDiff, version: Type.Optional(Type.Integer()) }),
  },
  'objects.record.file.downloaded': {
    title: 'File of a file field downloaded',
    service: 'objects',
    target: '<object name>',
    outcomes: ['success'],
    details: open({ values: Type.Optional(Type.Record(Str(64), Type.Unknown())) }),
  },
  'objects.record.file.deleted': {
    title: 'File of a file field deleted',
    service: 'objects',
    target: '<object name>',
    outcomes: ['success'],
    details: open({ changes: FieldDiff, version: Type.Optional(Type.Integer()) }),
  },
  'objects.share.granted': {
    title: 'Explicit share granted',
    service: 'objects',
    target: '<object name>',
    outcomes: ['success'],
    details: open({ sharedWith: open({ type: Str(32), id: Id }), accessLevel: Str(8) }),
  },
  'objects.share.revoked': {
    title: 'Explicit share revoked',
    service: 'objects',
    target: '<object name>',
    outcomes: ['success'],
    details: open({ sharedWith: open({ type: Str(32), id: Id }) }),
  },
  'objects.sharing_rule.changed': change('Sharing rule created, changed or deleted', 'sharing_rule', 'objects'),
  'objects.metadata.changed': change('Object metadata changed', 'object', 'objects'),
  'objects.bundle.applied': {
    title: 'Bundle applied',
    service: 'objects',
    target: 'bundle',
    outcomes: ['success', 'failure'],
    details: open({ digest: Type.Optional(Str(80)), dryRun: Type.Optional(Type.Boolean()), summary: Type.Optional(open({})) }),
  },
  'authz.denied': {
    title: 'Authorization denied (with the deciding layer)',
    service: 'any',
    target: 'route | <object name> | tool | pending_action',
    outcomes: ['denied'],
    details: open({
      missingCapabilities: Type.Optional(Type.Array(Str(64))),
      action: Type.Optional(Str(32)),
      layer: Type.Optional(Layer),
      reason: Type.Optional(Str(200)),
      field: Type.Optional(Str(64)),
      count: Type.Optional(
        Type.Integer({ minimum: 1, description: 'refusals this event stands for (1, or the repeats a window summarized: ADR 0014)' }),
      ),
      firstAt: Type.Optional(Type.String({ format: 'date-time', description: 'first refusal this event stands for' })),
      lastAt: Type.Optional(Type.String({ format: 'date-time', description: 'last refusal this event stands for' })),
    }),
  },
  'agent.conversation.started': {
    title: 'Agent conversation started',
    service: 'agent-gateway',
    target: 'conversation',
    outcomes: ['success'],
    details: open({ model: Type.Optional(Str(128)) }),
  },
  'agent.model.requested': {
    title: 'Agent runtime sent a request to the model provider (the egress record: what left, never the content unless the org asks)',
    service: 'agent-gateway',
    target: 'conversation',
    outcomes: ['success', 'failure'],
    details: open({
      egressId: Id,
      provider: Str(256),
      model: Str(128),
      bytesSent: Type.Integer({ minimum: 0 }),
      recordIds: Type.Array(Str(128), { maxItems: 200 }),
      fields: Type.Array(Str(200), { maxItems: 200, description: 'object.field names whose values were sent' }),
      withheld: Type.Array(Str(200), { maxItems: 200, description: 'object.field names withheld by the egress policy' }),
      promptTokens: Type.Optional(Type.Integer({ minimum: 0 })),
      completionTokens: Type.Optional(Type.Integer({ minimum: 0 })),
      error: Type.Optional(Str(64)),
      content: Type.Optional(Type.String({ description: 'the request body, only with the egress.audit_content setting' })),
    }),
  },
  'agent.conversation.exported': {
    title: 'Agent conversation exported (the digest of the export)',
    service: 'agent-gateway',
    target: 'conversation',
    outcomes: ['success'],
    details: open({
      sha256: Str(64),
      messages: Type.Integer({ minimum: 0 }),
      auditEvents: Type.Optional(Type.Integer({ minimum: 0, description: 'audit events listed in the export' })),
    }),
  },
  'agent.conversation.message_posted': {
    title: 'A user posted a message in an agent conversation (its length, never its text)',
    service: 'agent-gateway',
    target: 'conversation',
    outcomes: ['success'],
    details: open({ messageId: Id, length: Type.Integer({ minimum: 1, description: 'characters (UTF-16 code units)' }) }),
  },
  'agent.turn.ended': {
    title: 'An agent turn ended (answered, stopped at a limit, waiting for approval, or failed)',
    service: 'agent-gateway',
    target: 'conversation',
    outcomes: ['success', 'failure'],
    details: open({
      state: Type.Union(
        ['idle', 'waiting_approval', 'failed'].map((s) => Type.Literal(s)),
        { description: 'the conversation’s state after the turn' },
      ),
      resumed: Type.Boolean({ description: 'true for a turn resumed by a pending action’s decision' }),
      toolCalls: Type.Integer({ minimum: 0 }),
      modelRequests: Type.Integer({ minimum: 0 }),
      promptTokens: Type.Integer({ minimum: 0 }),
      completionTokens: Type.Integer({ minimum: 0 }),
      durationMs: Type.Integer({ minimum: 0 }),
      error: Type.Optional(Str(64)),
    }),
  },
  'agent.conversation.purged': {
    title: 'Agent conversations deleted by the retention setting',
    service: 'agent-gateway',
    target: 'conversation',
    outcomes: ['success'],
    details: open({
      count: Type.Integer({ minimum: 1 }),
      retentionDays: Type.Integer({ minimum: 1 }),
      conversationIds: Type.Array(Id, { maxItems: 200 }),
    }),
  },
  'agent.tool.called': {
    title: 'Agent tool called (redacted input, outcome)',
    service: 'agent-gateway',
    target: 'tool',
    outcomes: ['success', 'failure', 'denied'],
    details: open({
      tool: Str(64),
      input: Type.Optional(open({})),
      resultRows: Type.Optional(Type.Integer()),
      resultBytes: Type.Optional(Type.Integer({ minimum: 0, description: 'size of the structured result returned' })),
      truncated: Type.Optional(Type.Boolean()),
      recordIds: Type.Optional(Type.Array(Str(128), { maxItems: 200, description: 'records read or targeted by the call' })),
      pendingActionId: Type.Optional(Id),
      latencyMs: Type.Optional(Type.Integer({ minimum: 0 })),
      mcpSessionId: Type.Optional(Str(128)),
      error: Type.Optional(Str(64)),
    }),
  },
  'agent.session.started': {
    title: 'MCP session opened at the agent gateway',
    service: 'agent-gateway',
    target: 'mcp_session',
    outcomes: ['success', 'denied'],
    details: open({
      client: Type.Optional(open({ name: Type.Optional(Str(200)), version: Type.Optional(Str(64)) })),
      protocolVersion: Type.Optional(Str(32)),
      reason: Type.Optional(Str(64)),
    }),
  },
  'agent.session.ended': {
    title: 'MCP session closed (by the client, idle timeout or shutdown)',
    service: 'agent-gateway',
    target: 'mcp_session',
    outcomes: ['success'],
    details: open({ reason: Str(32), toolCalls: Type.Optional(Type.Integer({ minimum: 0 })) }),
  },
  'approvals.action.requested': {
    title: 'Pending action requested',
    service: 'approvals',
    target: 'pending_action',
    outcomes: ['success'],
    details: open({ kind: Str(32), object: Type.Optional(Str(64)), recordId: Type.Optional(Str(128)) }),
  },
  'approvals.action.approved': {
    title: 'Pending action approved',
    service: 'approvals',
    target: 'pending_action',
    outcomes: ['success', 'denied'],
    details: open({}),
  },
  'approvals.action.rejected': {
    title: 'Pending action rejected',
    service: 'approvals',
    target: 'pending_action',
    outcomes: ['success'],
    details: open({ reason: Type.Optional(Str(500)) }),
  },
  'approvals.action.applied': {
    title: 'Pending action applied',
    service: 'approvals',
    target: 'pending_action',
    outcomes: ['success'],
    details: open({}),
  },
  'approvals.action.failed': {
    title: 'Pending action failed to apply (stale, forbidden, error)',
    service: 'approvals',
    target: 'pending_action',
    outcomes: ['failure', 'denied'],
    details: open({ reason: Str(64) }),
  },
  'approvals.action.cancelled': {
    title: 'Pending action cancelled by its requester',
    service: 'approvals',
    target: 'pending_action',
    outcomes: ['success'],
    details: open({ reason: Type.Optional(Type.Union([Str(2000), Type.Null()])) }),
  },
  'approvals.action.commented': {
    title: 'Comment added to a pending action',
    service: 'approvals',
    target: 'pending_action',
    outcomes: ['success'],
    details: open({ commentId: Id, length: Type.Integer({ minimum: 1 }) }),
  },
  'approvals.action.expired': {
    title: 'Pending action expired',
    service: 'approvals',
    target: 'pending_action',
    outcomes: ['success'],
    details: open({}),
  },
  'approvals.policy.changed': change('Approval policy created or changed (bundle apply)', 'approval_policy', 'approvals'),
  'audit.archived': {
    title: 'Audit rows archived',
    service: 'audit',
    target: 'audit_log',
    outcomes: ['success'],
    details: open({ before: Str(40), archived: Type.Integer({ minimum: 0 }) }),
  },
  'settings.changed': change('Settings changed', 'settings', 'any'),
};

/** Event ids one GetAuditProof request may ask about. */
export const MAX_AUDIT_PROOF_IDS = 1000;

const Hash = Type.String({ pattern: '^[0-9a-f]{64}$' });

/**
 * A service asks the audit service where events it wrote stand in the org's hash chain (to hand
 * them out as evidence, e.g. a conversation export): for each id it names that is stored, the
 * sequence number, the chain hashes and the event as stored; and the org's newest signed
 * checkpoint with the trusted public keys. Only events of the org whose `service` is the asking
 * service are answered. With `viewer`, hashes are given only when that reader's access hides
 * nothing (docs/adr/0012, as the audit API decides them).
 */
export const GetAuditProof = defineRequest({
  subject: 'audit.events.proof',
  service: 'audit',
  request: Type.Object(
    {
      orgId: Id,
      service: Type.Union(SERVICE_NAMES.map((n) => Type.Literal(n))),
      ids: Type.Array(Id, { maxItems: MAX_AUDIT_PROOF_IDS }),
      viewer: Type.Optional(AuditReaderSchema),
    },
    { additionalProperties: false },
  ),
  response: Type.Object(
    {
      chainId: Id,
      /** False when `viewer`'s access hides something: every prevHash/rowHash is then null. */
      hashes: Type.Boolean(),
      events: Type.Array(
        Type.Object(
          {
            id: Id,
            seq: Type.Integer({ minimum: 1 }),
            prevHash: Type.Union([Hash, Type.Null()]),
            rowHash: Type.Union([Hash, Type.Null()]),
            archived: Type.Boolean(),
            event: Type.Record(Type.String(), Type.Unknown()),
          },
          { additionalProperties: false },
        ),
        { maxItems: MAX_AUDIT_PROOF_IDS },
      ),
      checkpoint: Type.Union([
        Type.Object(
          {
            v: Type.Literal(1),
            type: Type.Literal('custodian.audit.checkpoint'),
            chainId: Id,
            seq: Type.Integer({ minimum: 0 }),
            headHash: Hash,
            signedAt: Type.String(),
            kid: Type.String({ maxLength: 64 }),
            signature: Type.String({ maxLength: 256 }),
            publicKey: Type.String({ maxLength: 1024 }),
          },
          { additionalProperties: false },
        ),
        Type.Null(),
      ]),
      publicKeys: Type.Array(Type.String({ maxLength: 1024 }), { maxItems: 16 }),
    },
    { additionalProperties: false },
  ),
});
export type AuditProof = Static<typeof GetAuditProof.response>;
