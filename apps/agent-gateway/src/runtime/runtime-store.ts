import { uuidv7 } from '@custodian/platform';
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

/* eslint-disable @typescript-eslint/no-explicit-any -- rows come back from raw SQL */
const profileOf = (r: any): Profile => ({
  id: r.id,
  orgId: r.org_id,
  name: r.name,
  model: r.model,
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
      `INSERT INTO agent_profile (id, org_id, name, model, system_prompt, scopes, limits) VALUES ($1, $2, $3, $4, $5, $6, $7)
       ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, model = EXCLUDED.model, system_prompt = EXCLUDED.system_prompt,
         scopes = EXCLUDED.scopes, limits = EXCLUDED.limits, version = agent_profile.version + 1, updated_at = now()
       WHERE agent_profile.org_id = EXCLUDED.org_id RETURNING *`,
      [p.id, p.orgId, p.name, p.model, p.systemPrompt, p.scopes, JSON.stringify(p.limits)],
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
  async egress(
    db: Db,
    e: {
      orgId: string;
      conversationId: string;
      provider: string;
      model: string;
      bytesSent: number;
      recordIds: string[];
      fields: string[];
      withheld: string[];
      promptTokens?: number;
      completionTokens?: number;
      outcome: string;
    },
  ): Promise<string> {
    const id = uuidv7();
    await db.query(
      `INSERT INTO agent_egress (id, org_id, conversation_id, provider, model, bytes_sent, record_ids, fields, withheld, prompt_tokens, completion_tokens, outcome)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
      [
        id,
        e.orgId,
        e.conversationId,
        e.provider,
        e.model,
        e.bytesSent,
        JSON.stringify(e.recordIds),
        JSON.stringify(e.fields),
        JSON.stringify(e.withheld),
        e.promptTokens ?? null,
        e.completionTokens ?? null,
        e.outcome,
      ],
    );
    return id;
  },
  async egressOf(db: Db, conversationId: string): Promise<Array<Record<string, unknown>>> {
    return db.query(
      'SELECT id, provider, model, bytes_sent AS "bytesSent", record_ids AS "recordIds", fields, withheld, prompt_tokens AS "promptTokens", completion_tokens AS "completionTokens", outcome, created_at AS "createdAt" FROM agent_egress WHERE conversation_id = $1 ORDER BY created_at, id',
      [conversationId],
    );
  },
};
