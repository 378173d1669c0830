import { SETTINGS_SELECT, uuidv7, type SettingRow } from '@custodian/platform';
import type { DataSource, EntityManager } from 'typeorm';

export interface ProfileLimits {
  /** Tool calls the agent may make while answering one user message. */
  toolCallsPerTurn: number;
  /** Model requests per user message (a model that only ever calls tools stops here). */
  modelCallsPerTurn: number;
  /** Completion tokens per user message, summed over its model requests. */
  tokensPerTurn: number;
  /** Wall time of one user message's whole loop. */
  wallTimeMs: number;
}

export const DEFAULT_LIMITS: ProfileLimits = { toolCallsPerTurn: 8, modelCallsPerTurn: 10, tokensPerTurn: 20_000, wallTimeMs: 120_000 };

export interface Profile {
  id: string;
  orgId: string;
  name: string;
  model: string | null;
  /** A named provider (`provider.<name>.*` settings) instead of the org default; null = the default. */
  provider: string | null;
  systemPrompt: string;
  scopes: string[];
  limits: ProfileLimits;
  version: number;
}

export interface Conversation {
  id: string;
  orgId: string;
  userId: string;
  sessionId: string | null;
  apiKeyId: string | null;
  profileId: string;
  agentClientId: string;
  state: 'idle' | 'running' | 'waiting_approval' | 'failed';
  lastError: string | null;
  createdAt: string;
  updatedAt: string;
}

export interface StoredMessage {
  id: string;
  seq: number;
  role: 'user' | 'assistant' | 'tool' | 'notice';
  content: string;
  toolCalls?: Array<{ id: string; name: string; arguments: string }>;
  toolCallId?: string;
  toolName?: string;
  pendingActionId?: string;
  pendingState?: string;
  meta: Record<string, unknown>;
  createdAt: string;
}

type Db = DataSource | EntityManager;

/** One model request's egress record (what left for the model, never the content itself). */
export interface EgressRow {
  id: string;
  provider: string;
  model: string;
  bytesSent: number;
  recordIds: string[];
  fields: string[];
  withheld: string[];
  promptTokens?: number;
  completionTokens?: number;
  outcome: string;
}

/* eslint-disable @typescript-eslint/no-explicit-any -- rows come back from raw SQL */
const profileOf = (r: any): Profile => ({
  id: r.id,
  orgId: r.org_id,
  name: r.name,
  model: r.model,
  provider: r.provider ?? null,
  systemPrompt: r.system_prompt,
  scopes: r.scopes,
  limits: { ...DEFAULT_LIMITS, ...(r.limits as Partial<ProfileLimits>) },
  version: r.version,
});
const conversationOf = (r: any): Conversation => ({
  id: r.id,
  orgId: r.org_id,
  userId: r.user_id,
  sessionId: r.session_id,
  apiKeyId: r.api_key_id,
  profileId: r.profile_id,
  agentClientId: r.agent_client_id,
  state: r.state,
  lastError: r.last_error,
  createdAt: new Date(r.created_at).toISOString(),
  updatedAt: new Date(r.updated_at).toISOString(),
});
const messageOf = (r: any): StoredMessage => ({
  id: r.id,
  seq: r.seq,
  role: r.role,
  content: r.content,
  ...(r.tool_calls ? { toolCalls: r.tool_calls } : {}),
  ...(r.tool_call_id ? { toolCallId: r.tool_call_id } : {}),
  ...(r.tool_name ? { toolName: r.tool_name } : {}),
  ...(r.pending_action_id ? { pendingActionId: r.pending_action_id } : {}),
  ...(r.pending_state ? { pendingState: r.pending_state } : {}),
  meta: r.meta ?? {},
  createdAt: new Date(r.created_at).toISOString(),
});
/* eslint-enable @typescript-eslint/no-explicit-any */

/** What a turn reads before its first model request. */
export interface TurnContext {
  profile: Profile | undefined;
  settings: SettingRow[];
  history: StoredMessage[];
}

/** The turn context as columns of a row `c` that has org_id, profile_id and id (the conversation's). */
const CONTEXT_COLUMNS = `(SELECT row_to_json(p) FROM agent_profile p WHERE p.org_id = c.org_id AND p.id = c.profile_id) AS profile,
  (SELECT COALESCE(json_agg(s), '[]') FROM (${SETTINGS_SELECT} WHERE org_id = c.org_id) s) AS settings,
  (SELECT COALESCE(json_agg(h ORDER BY h.seq), '[]') FROM
     (SELECT * FROM agent_message WHERE conversation_id = c.id ORDER BY seq LIMIT 5000) h) AS history`;

/* eslint-disable-next-line @typescript-eslint/no-explicit-any -- a row of raw SQL */
const contextOf = (row: any): TurnContext => ({
  profile: row.profile ? profileOf(row.profile) : undefined,
  settings: row.settings as SettingRow[],
  history: (row.history as unknown[]).map(messageOf),
});

/** The smallest UUIDv7 of a millisecond: every id made at or after it sorts at or after this one. */
function uuidv7Floor(ms: number): string {
  const hex = Math.max(0, ms).toString(16).padStart(12, '0');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-7000-8000-000000000000`;
}

/** SQL for the runtime's own tables; every query is scoped by org (and user where it applies). */
export const runtimeStore = {
  async profiles(db: Db, orgId: string): Promise<Profile[]> {
    return (await db.query('SELECT * FROM agent_profile WHERE org_id = $1 ORDER BY name LIMIT 500', [orgId])).map(profileOf);
  },
  async profile(db: Db, orgId: string, id: string): Promise<Profile | undefined> {
    const rows = await db.query('SELECT * FROM agent_profile WHERE org_id = $1 AND id = $2', [orgId, id]);
    return rows[0] ? profileOf(rows[0]) : undefined;
  },
  async saveProfile(m: EntityManager, p: Omit<Profile, 'version'>): Promise<Profile> {
    const rows = await m.query(
      `INSERT INTO agent_profile (id, org_id, name, model, provider, system_prompt, scopes, limits) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
       ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, model = EXCLUDED.model, provider = EXCLUDED.provider,
         system_prompt = EXCLUDED.system_prompt, scopes = EXCLUDED.scopes, limits = EXCLUDED.limits,
         version = agent_profile.version + 1, updated_at = now()
       WHERE agent_profile.org_id = EXCLUDED.org_id RETURNING *`,
      [p.id, p.orgId, p.name, p.model, p.provider, p.systemPrompt, p.scopes, JSON.stringify(p.limits)],
    );
    return profileOf(rows[0]);
  },
  async deleteProfile(m: EntityManager, orgId: string, id: string): Promise<boolean> {
    const [, count] = await m.query('DELETE FROM agent_profile WHERE org_id = $1 AND id = $2', [orgId, id]);
    return Number(count) > 0;
  },
  async createConversation(
    m: EntityManager,
    c: Pick<Conversation, 'orgId' | 'userId' | 'sessionId' | 'apiKeyId' | 'profileId' | 'agentClientId'>,
  ): Promise<Conversation> {
    const rows = await m.query(
      'INSERT INTO agent_conversation (id, org_id, user_id, session_id, api_key_id, profile_id, agent_client_id) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING *',
      [uuidv7(), c.orgId, c.userId, c.sessionId, c.apiKeyId, c.profileId, c.agentClientId],
    );
    return conversationOf(rows[0]);
  },
  /** The conversation if it belongs to this user of this org: someone else's answers like a missing one. */
  async conversation(db: Db, orgId: string, userId: string, id: string): Promise<Conversation | undefined> {
    const rows = await db.query('SELECT * FROM agent_conversation WHERE org_id = $1 AND user_id = $2 AND id = $3', [orgId, userId, id]);
    return rows[0] ? conversationOf(rows[0]) : undefined;
  },
  async conversationById(db: Db, id: string): Promise<Conversation | undefined> {
    const rows = await db.query('SELECT * FROM agent_conversation WHERE id = $1', [id]);
    return rows[0] ? conversationOf(rows[0]) : undefined;
  },
  async conversations(db: Db, orgId: string, userId: string): Promise<Conversation[]> {
    return (
      await db.query('SELECT * FROM agent_conversation WHERE org_id = $1 AND user_id = $2 ORDER BY updated_at DESC LIMIT 200', [
        orgId,
        userId,
      ])
    ).map(conversationOf);
  },
  /** Moves a conversation to `to` only from one of `from`; false when it was not in such a state. */
  async transition(
    db: Db,
    id: string,
    from: Conversation['state'][],
    to: Conversation['state'],
    lastError: string | null = null,
  ): Promise<boolean> {
    const [, count] = await db.query(
      'UPDATE agent_conversation SET state = $2, last_error = $3, updated_at = now() WHERE id = $1 AND state = ANY($4::text[])',
      [id, to, lastError, from],
    );
    return Number(count) > 0;
  },
  /**
   * Starts a user turn in one statement: the caller's own conversation moves to `running` (from
   * idle, waiting_approval or failed — or from a `running` left behind by a process that stopped
   * mid-turn, once the profile's wall time and a minute have passed), takes the caller's current
   * credential for later resumes, and gets the user's message. `missing` when it is not the
   * caller's, `busy` while a turn runs. The message's audit event goes in the same statement,
   * written exactly when the message is.
   */
  async startTurn(
    db: Db,
    c: {
      orgId: string;
      userId: string;
      id: string;
      sessionId: string | null;
      apiKeyId: string | null;
      messageId: string;
      content: string;
      /** The message's audit event (OutboxWriter.prepare), written only with the message. */
      outbox: { id: string; subject: string; payload: unknown };
    },
  ): Promise<{ conversation: Conversation; message: StoredMessage; context: TurnContext } | 'missing' | 'busy'> {
    // The turn's context comes back in the same round trip (the history as before the new message, which is added here).
    const rows = await db.query(
      `WITH c AS (
         UPDATE agent_conversation SET state = 'running', last_error = NULL, session_id = $4, api_key_id = $5, updated_at = now()
         WHERE id = $1 AND org_id = $2 AND user_id = $3 AND (state IN ('idle', 'waiting_approval', 'failed')
           -- A turn cannot outlive its profile's wall time: one still 'running' a minute past it died with its process.
           OR (state = 'running' AND updated_at < now() - make_interval(secs => 60 + COALESCE(
             (SELECT (p.limits->>'wallTimeMs')::numeric / 1000 FROM agent_profile p WHERE p.id = agent_conversation.profile_id), 3600))))
         RETURNING *
       ), m AS (
         INSERT INTO agent_message (id, conversation_id, org_id, seq, role, content)
         SELECT $6, c.id, c.org_id, (SELECT COALESCE(MAX(seq), 0) + 1 FROM agent_message WHERE conversation_id = $1), 'user', $7 FROM c
         RETURNING *
       ), ob AS (
         INSERT INTO outbox (id, subject, payload) SELECT $8, $9, $10::jsonb FROM m RETURNING id
       )
       SELECT row_to_json(c) AS conversation, (SELECT row_to_json(m) FROM m) AS message, ${CONTEXT_COLUMNS} FROM c`,
      [
        c.id,
        c.orgId,
        c.userId,
        c.sessionId,
        c.apiKeyId,
        c.messageId,
        c.content,
        c.outbox.id,
        c.outbox.subject,
        JSON.stringify(c.outbox.payload),
      ],
    );
    if (rows[0]) {
      const conversation = conversationOf(rows[0].conversation);
      const message = messageOf(rows[0].message);
      const context = contextOf(rows[0]);
      context.history.push(message);
      return { conversation, message, context };
    }
    return (await this.conversation(db, c.orgId, c.userId, c.id)) ? 'busy' : 'missing';
  },
  /** What a turn needs, in one round trip: the profile, the org's settings rows and the history. */
  async turnContext(db: Db, orgId: string, profileId: string, conversationId: string): Promise<TurnContext> {
    const [row] = await db.query(`SELECT ${CONTEXT_COLUMNS} FROM (SELECT $1::uuid AS org_id, $2::uuid AS profile_id, $3::uuid AS id) c`, [
      orgId,
      profileId,
      conversationId,
    ]);
    return contextOf(row);
  },
  /**
   * Everything one step of a turn wrote, in one statement (one round trip, all or nothing): its
   * messages (numbered after the conversation's last), egress records, audit events (outbox rows
   * prepared by OutboxWriter.prepare) and the conversation's state — `keep` while the turn goes on;
   * `settle` = waiting_approval if a pending action of the conversation is still open, else idle.
   */
  async commitStep(
    db: Db,
    step: {
      orgId: string;
      conversationId: string;
      messages: Array<Omit<StoredMessage, 'seq' | 'createdAt'>>;
      egress: EgressRow[];
      outbox: Array<{ id: string; subject: string; payload: unknown }>;
      state: 'keep' | 'settle' | 'failed';
      lastError?: string | null;
      /** A pending action filed in this very step is still open. */
      openInStep?: boolean;
      finalPending: readonly string[];
      /** The outbox row (of `outbox`) whose `details.state` takes the conversation's state as this statement leaves it. */
      stateEventId?: string;
    },
  ): Promise<{ messages: StoredMessage[]; state: Conversation['state'] }> {
    const messages = step.messages.map((m, i) => ({
      id: m.id,
      ord: i + 1,
      role: m.role,
      content: m.content,
      tool_calls: m.toolCalls ?? null,
      tool_call_id: m.toolCallId ?? null,
      tool_name: m.toolName ?? null,
      pending_action_id: m.pendingActionId ?? null,
      pending_state: m.pendingState ?? null,
      meta: m.meta,
    }));
    const egress = step.egress.map((e) => ({
      id: e.id,
      provider: e.provider,
      model: e.model,
      bytes_sent: e.bytesSent,
      record_ids: e.recordIds,
      fields: e.fields,
      withheld: e.withheld,
      prompt_tokens: e.promptTokens ?? null,
      completion_tokens: e.completionTokens ?? null,
      outcome: e.outcome,
    }));
    const [row] = await db.query(
      `WITH base AS (SELECT COALESCE(MAX(seq), 0) AS s FROM agent_message WHERE conversation_id = $1),
       msgs AS (
         INSERT INTO agent_message (id, conversation_id, org_id, seq, role, content, tool_calls, tool_call_id, tool_name, pending_action_id, pending_state, meta)
         SELECT x.id, $1, $2, base.s + x.ord, x.role, x.content, x.tool_calls, x.tool_call_id, x.tool_name, x.pending_action_id, x.pending_state, x.meta
         FROM base, jsonb_to_recordset($3::jsonb) AS x(id uuid, ord int, role text, content text, tool_calls jsonb, tool_call_id text,
           tool_name text, pending_action_id uuid, pending_state text, meta jsonb)
         RETURNING *
       ),
       eg AS (
         INSERT INTO agent_egress (id, org_id, conversation_id, provider, model, bytes_sent, record_ids, fields, withheld, prompt_tokens, completion_tokens, outcome)
         SELECT e.id, $2, $1, e.provider, e.model, e.bytes_sent, e.record_ids, e.fields, e.withheld, e.prompt_tokens, e.completion_tokens, e.outcome
         FROM jsonb_to_recordset($4::jsonb) AS e(id uuid, provider text, model text, bytes_sent int, record_ids jsonb, fields jsonb,
           withheld jsonb, prompt_tokens int, completion_tokens int, outcome text)
         RETURNING id
       ),
       conv AS (
         UPDATE agent_conversation SET updated_at = now(),
           state = CASE $6::text
             WHEN 'keep' THEN state
             WHEN 'failed' THEN 'failed'
             ELSE CASE WHEN $7::boolean OR EXISTS (
               SELECT 1 FROM agent_message WHERE conversation_id = $1 AND pending_action_id IS NOT NULL
                 AND COALESCE(pending_state, 'pending') <> ALL($8::text[])) THEN 'waiting_approval' ELSE 'idle' END
           END,
           last_error = CASE $6::text WHEN 'keep' THEN last_error ELSE $9 END
         WHERE id = $1 RETURNING state
       ),
       ob AS (
         INSERT INTO outbox (id, subject, payload)
         SELECT o.id, o.subject, CASE WHEN o.id = $10::uuid
           THEN jsonb_set(o.payload, '{details,state}', to_jsonb((SELECT state FROM conv))) ELSE o.payload END
         FROM jsonb_to_recordset($5::jsonb) AS o(id uuid, subject text, payload jsonb)
         RETURNING id
       )
       SELECT (SELECT COALESCE(json_agg(m ORDER BY m.seq), '[]') FROM msgs m) AS messages, (SELECT state FROM conv) AS state,
              (SELECT count(*) FROM eg) + (SELECT count(*) FROM ob) AS written`,
      [
        step.conversationId,
        step.orgId,
        JSON.stringify(messages),
        JSON.stringify(egress),
        JSON.stringify(step.outbox),
        step.state,
        step.openInStep === true,
        step.finalPending,
        step.lastError ?? null,
        step.stateEventId ?? null,
      ],
    );
    return { messages: (row.messages as unknown[]).map(messageOf), state: row.state };
  },
  async rebind(db: Db, id: string, sessionId: string | null, apiKeyId: string | null): Promise<void> {
    await db.query('UPDATE agent_conversation SET session_id = $2, api_key_id = $3 WHERE id = $1', [id, sessionId, apiKeyId]);
  },
  async messages(db: Db, conversationId: string): Promise<StoredMessage[]> {
    return (await db.query('SELECT * FROM agent_message WHERE conversation_id = $1 ORDER BY seq LIMIT 5000', [conversationId])).map(
      messageOf,
    );
  },
  async append(
    db: Db,
    orgId: string,
    conversationId: string,
    msg: Omit<StoredMessage, 'id' | 'seq' | 'createdAt'>,
  ): Promise<StoredMessage> {
    const rows = await db.query(
      `INSERT INTO agent_message (id, conversation_id, org_id, seq, role, content, tool_calls, tool_call_id, tool_name, pending_action_id, pending_state, meta)
       VALUES ($1, $2, $3, (SELECT COALESCE(MAX(seq), 0) + 1 FROM agent_message WHERE conversation_id = $2), $4, $5, $6, $7, $8, $9, $10, $11) RETURNING *`,
      [
        uuidv7(),
        conversationId,
        orgId,
        msg.role,
        msg.content,
        msg.toolCalls ? JSON.stringify(msg.toolCalls) : null,
        msg.toolCallId ?? null,
        msg.toolName ?? null,
        msg.pendingActionId ?? null,
        msg.pendingState ?? null,
        JSON.stringify(msg.meta),
      ],
    );
    await db.query('UPDATE agent_conversation SET updated_at = now() WHERE id = $1', [conversationId]);
    return messageOf(rows[0]);
  },
  /** Records a pending action's new state on the messages that filed it; the conversations concerned. */
  async pendingChanged(db: Db, orgId: string, pendingActionId: string, state: string): Promise<string[]> {
    const rows: Array<{ conversation_id: string }> = await db.query(
      'UPDATE agent_message SET pending_state = $3 WHERE org_id = $1 AND pending_action_id = $2 AND pending_state IS DISTINCT FROM $3 RETURNING conversation_id',
      [orgId, pendingActionId, state],
    );
    const flat = (Array.isArray(rows[0]) ? rows[0] : rows) as Array<{ conversation_id: string }>;
    return [...new Set(flat.map((r) => r.conversation_id))];
  },
  async egressOf(db: Db, conversationId: string): Promise<Array<Record<string, unknown>>> {
    const rows: Array<Record<string, unknown>> = await db.query(
      'SELECT id, provider, model, bytes_sent AS "bytesSent", record_ids AS "recordIds", fields, withheld, prompt_tokens AS "promptTokens", completion_tokens AS "completionTokens", outcome, created_at AS "createdAt" FROM agent_egress WHERE conversation_id = $1 ORDER BY created_at, id',
      [conversationId],
    );
    // JSON data only (an export's digest is over its canonical JSON): the time as its ISO string.
    return rows.map((r) => ({ ...r, createdAt: new Date(r.createdAt as string).toISOString() }));
  },
  /**
   * The audit events this service wrote about a conversation, oldest first, from its own outbox
   * (which keeps every row): the conversation's own events (target), the runtime's tool events
   * (details.conversationId) and the executor's (details.mcpSessionId, the conversation id for the
   * runtime's calls). Event ids are UUIDv7, so the scan starts at the conversation's creation time
   * (less a minute for replicas' clocks) on the primary key.
   */
  async auditEventsOf(
    db: Db,
    conversation: Pick<Conversation, 'id' | 'orgId' | 'createdAt'>,
    subject: string,
    limit: number,
  ): Promise<Array<{ id: string; action: string; occurredAt: string }>> {
    return db.query(
      `SELECT id::text AS id, payload->>'action' AS action, payload->>'occurredAt' AS "occurredAt" FROM outbox
        WHERE id >= $1::uuid AND subject = $2 AND payload->>'orgId' = $3
          AND ((payload->'target'->>'type' = 'conversation' AND payload->'target'->>'id' = $4)
            OR payload->'details'->>'conversationId' = $4
            OR (payload->>'action' = 'agent.tool.called' AND payload->'details'->>'mcpSessionId' = $4))
        ORDER BY id LIMIT $5`,
      [uuidv7Floor(new Date(conversation.createdAt).getTime() - 60_000), subject, conversation.orgId, conversation.id, limit],
    );
  },
};
