import { Inject, Injectable } from '@nestjs/common';
import {
  DescribeObjects,
  FilePendingAction,
  GetPendingActionState,
  GovernedGet,
  GovernedQuery,
  ListGovernedActions,
  AuditEventRecorded,
  type AuditEvent,
  type FiledAction,
  type PrincipalSnapshot,
  type Proposal,
  type Proposer,
} from '@custodian/contracts';
import { BUS, CONFIG, CustodianException, LOGGER, requestContext, type Bus, type CustodianConfig } from '@custodian/platform';
import type { Logger } from 'pino';
import { GatewayAudit } from '../audit/gateway-audit.service';
import { CallRateLimiter } from './call-rate.limiter';
import { credentialKey } from './credential-key';
import { MUTATING_TOOLS, TOOL_NAMES, type ToolDefinition, type ToolName } from './tool-catalog';
import { ToolCatalogService } from './tool-catalog.service';
import { ToolInputValidator } from './tool-input.validator';
import {
  cutToBytes,
  decodeCursor,
  encodeCursor,
  errorResult,
  queryHash,
  untrustedBlock,
  type ToolOutcome,
  type ToolResult,
} from './tool-output';

/** Most records remembered per session as read (the reviewers' prompt-injection context). */
export const MAX_RECORDS_READ = 200;

/** What the gateway keeps per MCP session for its tools. */
export interface ToolSession {
  readonly id: string;
  /** `object:id` → the record, most recently read last. */
  readonly recordsRead: Map<string, { object: string; id: string }>;
  toolCalls: number;
}

export interface ToolCall {
  name: string;
  args: Record<string, unknown> | undefined;
  principal: PrincipalSnapshot;
  session: ToolSession;
  /** The JSON-RPC id of the tools/call request. */
  toolCallId?: string;
  conversationId?: string;
}

/** A call that ran, its audit row on its way: its result may leave only through `ToolExecutor.settle`. */
export interface UnsettledCall {
  readonly name: string;
  readonly result: ToolResult;
  /** Settles once the call's audit row is committed (rejects when it could not be written). */
  readonly audited: Promise<void>;
}

/**
 * A read that ran, its audit row prepared and not written (`begin` with `deferAudit`): the caller
 * writes `auditRow` in the very statement that first stores its result, and sends nothing of the
 * result anywhere before that statement committed — or hands the call to `settle`, which writes
 * the row itself.
 */
export interface DeferredCall {
  readonly name: string;
  readonly result: ToolResult;
  readonly auditRow: { id: string; subject: string; payload: AuditEvent };
}

/** A tool this principal may not call, answered exactly as a tool that does not exist. */
export class UnknownToolError extends Error {
  constructor(readonly tool: string) {
    super(`Tool ${tool} not found`);
  }
}

type Args = Record<string, unknown>;

/**
 * Runs one tool call: the principal must be allowed the tool (else it does not exist), the call
 * is within the credential's rate, the arguments within their size and their JSON Schema — all
 * before anything runs. Reads go to objects' governed reads with the principal snapshot (the same
 * path and Decision as REST, user ∩ agent scopes); mutating tools only file a pending action with
 * approvals. Every call is audited, a refused one as a denial.
 */
@Injectable()
export class ToolExecutor {
  private readonly validator = new ToolInputValidator();
  private readonly limiter: CallRateLimiter;

  constructor(
    @Inject(BUS) private readonly bus: Bus,
    @Inject(CONFIG) private readonly config: CustodianConfig,
    @Inject(ToolCatalogService) private readonly catalog: ToolCatalogService,
    @Inject(GatewayAudit) private readonly audit: GatewayAudit,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {
    this.limiter = new CallRateLimiter(config.agentGateway.toolCallsPerMinute);
  }

  async call(call: ToolCall): Promise<ToolResult> {
    return this.settle(await this.begin(call));
  }

  /**
   * Runs the call and starts writing its audit row without waiting for it, so the caller can
   * prepare what comes next meanwhile (the agent runtime builds its next model request). The
   * result must not leave the process before `settle` handed it out: that waits for the row and
   * withholds a read whose row could not be written. `call` is `begin` then `settle`.
   */
  async begin(call: ToolCall): Promise<UnsettledCall>;
  /**
   * With `deferAudit`, a call that files nothing comes back with its audit row prepared and not
   * written (DeferredCall); a mutating one is recorded as without it (approvals audits its filing).
   */
  async begin(call: ToolCall, opts: { deferAudit: true }): Promise<UnsettledCall | DeferredCall>;
  async begin(call: ToolCall, opts?: { deferAudit?: boolean }): Promise<UnsettledCall | DeferredCall> {
    const started = Date.now();
    const retryAfter = this.limiter.take(credentialKey(call.principal));
    const tool = retryAfter > 0 ? undefined : await this.catalog.find(call.principal, call.name);
    let outcome: ToolOutcome;
    if (retryAfter > 0) {
      outcome = {
        result: errorResult('rate_limited', `Too many tool calls; retry after ${retryAfter} s`, { retryAfterSeconds: retryAfter }),
        outcome: 'denied',
        error: 'rate_limited',
      };
    } else if (!tool) {
      const known = (TOOL_NAMES as readonly string[]).includes(call.name);
      await this.record(call, started, {
        result: errorResult('unknown_tool', ''),
        outcome: known ? 'denied' : 'failure',
        error: 'unknown_tool',
      });
      throw new UnknownToolError(call.name);
    } else {
      call.session.toolCalls++;
      outcome = await this.run(tool, call);
    }
    if (opts?.deferAudit && !MUTATING_TOOLS.has(call.name as ToolName)) {
      try {
        const payload = this.audit.prepare(call.principal, this.event(call, started, outcome));
        return { name: call.name, result: outcome.result, auditRow: { id: payload.id, subject: AuditEventRecorded.subject, payload } };
      } catch (error) {
        // Refused before any statement (backpressure, schema): withheld by settle as a failed write is.
        const audited = Promise.reject(error);
        audited.catch(() => undefined);
        return { name: call.name, result: outcome.result, audited };
      }
    }
    const audited = this.record(call, started, outcome);
    // Observed by settle; never an unhandled rejection in between.
    audited.catch(() => undefined);
    return { name: call.name, result: outcome.result, audited };
  }

  /** The result to hand out, once the call's audit row is committed (see begin; a deferred row is written here). */
  async settle(call: UnsettledCall | DeferredCall): Promise<ToolResult> {
    try {
      await ('auditRow' in call ? this.audit.write(call.auditRow.payload) : call.audited);
    } catch (error) {
      // Data leaves only with its audit event; a filed proposal is audited by approvals already.
      this.logger.error({ err: error, tool: call.name }, 'tool call audit failed');
      if (!MUTATING_TOOLS.has(call.name as ToolName)) {
        const code = error instanceof CustodianException ? error.code : 'internal_error';
        return errorResult(code, 'The call could not be audited, so its result is withheld; retry later');
      }
    }
    return call.result;
  }

  private async run(tool: ToolDefinition, call: ToolCall): Promise<ToolOutcome> {
    const args = call.args ?? {};
    const size = Buffer.byteLength(JSON.stringify(args));
    if (size > this.config.agentGateway.maxArgumentBytes) {
      return this.invalid([{ field: '/', message: `arguments are ${size} bytes; at most ${this.config.agentGateway.maxArgumentBytes}` }]);
    }
    const issues = this.validator.validate(tool.inputSchema, args);
    if (issues.length > 0) return this.invalid(issues);
    try {
      return await this.dispatch(tool.name, args, call);
    } catch (error) {
      return this.failed(error);
    }
  }

  private invalid(issues: Array<{ field: string; message: string }>): ToolOutcome {
    return {
      result: errorResult('validation_failed', 'The arguments do not match the tool input schema; nothing was done', { issues }),
      outcome: 'failure',
      error: 'validation_failed',
    };
  }

  private failed(error: unknown): ToolOutcome {
    if (error instanceof CustodianException) {
      const details = error.details && typeof error.details === 'object' ? (error.details as Record<string, unknown>) : undefined;
      const denied = error.code === 'forbidden';
      return { result: errorResult(error.code, error.message, details), outcome: denied ? 'denied' : 'failure', error: error.code };
    }
    this.logger.error({ err: error }, 'tool call failed');
    return {
      result: errorResult('internal_error', 'The tool failed', { requestId: requestContext.requestId() }),
      outcome: 'failure',
      error: 'internal_error',
    };
  }

  private dispatch(name: ToolName, args: Args, call: ToolCall): Promise<ToolOutcome> {
    switch (name) {
      case 'list_objects':
        return this.listObjects(call.principal);
      case 'describe_object':
        return this.describeObject(call.principal, args.object as string);
      case 'query_records':
        return this.queryRecords(call, args);
      case 'aggregate_records':
        return this.aggregate(call.principal, args);
      case 'get_record':
        return this.getRecord(call, args.object as string, args.id as string);
      case 'list_actions':
        return this.listActions(call.principal, args.object as string | undefined);
      case 'get_pending_action':
        return this.pendingState(call.principal, args.id as string);
      case 'create_record':
        return this.file(call, {
          kind: 'record.create',
          object: args.object as string,
          values: args.values as Args,
          justification: args.justification as string,
        });
      case 'update_record':
        return this.file(call, {
          kind: 'record.update',
          object: args.object as string,
          recordId: args.id as string,
          values: args.values as Args,
          justification: args.justification as string,
          ...(args.expectedVersion !== undefined ? { expectedVersion: args.expectedVersion as number } : {}),
        });
      case 'delete_record':
        return this.file(call, {
          kind: 'record.delete',
          object: args.object as string,
          recordId: args.id as string,
          justification: args.justification as string,
          ...(args.expectedVersion !== undefined ? { expectedVersion: args.expectedVersion as number } : {}),
        });
      case 'run_action':
        return this.file(call, {
          kind: 'action.run',
          object: args.object as string,
          recordId: args.id as string,
          action: args.action as string,
          justification: args.justification as string,
        });
      case 'propose_metadata_change':
        return this.file(call, {
          kind: 'metadata.change',
          object: args.object as string,
          values: args.definition as Args,
          justification: args.justification as string,
        });
    }
  }

  private async listObjects(principal: PrincipalSnapshot): Promise<ToolOutcome> {
    const objects = (await this.catalog.objects(principal)).map((o) => ({
      name: o.name,
      ...(o.label ? { label: o.label } : {}),
      ...(o.description ? { description: o.description } : {}),
      can: o.can,
    }));
    const lines = objects.map(
      (o) =>
        `${o.name}${o.label ? ` (${o.label})` : ''}: ${(Object.keys(o.can) as Array<keyof typeof o.can>).filter((k) => o.can[k]).join(', ')}`,
    );
    return this.ok({ objects }, [`${objects.length} object(s)`, ...lines].join('\n'), { rows: objects.length });
  }

  private async describeObject(principal: PrincipalSnapshot, object: string): Promise<ToolOutcome> {
    const { objects } = await this.bus.request(DescribeObjects, { principal, object });
    const described = objects[0];
    const lines = (described?.fields ?? []).map(
      (f) =>
        `- ${f.name}: ${f.type}${f.required ? ', required' : ''}${f.editable ? ', editable' : ', read-only'}${f.enum ? `, one of ${JSON.stringify(f.enum)}` : ''}${f.reference ? ` → ${f.reference}` : ''}`,
    );
    return this.ok({ object: described }, [`${object}: ${lines.length} readable field(s)`, ...lines].join('\n'), { rows: lines.length });
  }

  private async queryRecords(call: ToolCall, args: Args): Promise<ToolOutcome> {
    const object = args.object as string;
    const limit = (args.limit as number | undefined) ?? this.config.agentGateway.maxRows;
    const query: Args = {
      object,
      ...(args.fields ? { fields: args.fields } : {}),
      ...(args.where ? { where: args.where } : {}),
      ...(args.orderBy ? { orderBy: args.orderBy } : {}),
      limit,
    };
    const hash = queryHash(query);
    let upstream: string | null = null;
    let skip = 0;
    if (typeof args.cursor === 'string') {
      const cursor = decodeCursor(args.cursor, hash);
      if (!cursor)
        return this.invalid([
          { field: '/cursor', message: 'not a cursor of this query (send the same arguments as the call that returned it)' },
        ]);
      upstream = cursor.u;
      skip = cursor.s;
    }
    const answer = await this.bus.request(GovernedQuery, {
      principal: call.principal,
      query: upstream ? { ...query, cursor: upstream } : query,
    });
    const rows = (answer.records ?? []).slice(skip);
    const page = cutToBytes(rows, this.config.agentGateway.maxResultBytes);
    const next =
      page.cut > 0
        ? encodeCursor({ q: hash, u: upstream, s: skip + page.rows.length })
        : answer.nextCursor
          ? encodeCursor({ q: hash, u: answer.nextCursor, s: 0 })
          : undefined;
    const ids = this.remember(call.session, object, page.rows);
    const truncated = next !== undefined;
    const head = `${page.rows.length} ${object} record(s)${truncated ? `; truncated: call query_records again with the same arguments and cursor "${next}" for more` : ''}`;
    return this.ok(
      { object, records: page.rows, rowCount: page.rows.length, truncated, ...(next ? { nextCursor: next } : {}), untrusted: true },
      `${head}\n${untrustedBlock(page.json)}`,
      { rows: page.rows.length, truncated, recordIds: ids, bytes: page.bytes },
    );
  }

  private async aggregate(principal: PrincipalSnapshot, args: Args): Promise<ToolOutcome> {
    const object = args.object as string;
    const query: Args = {
      object,
      aggregations: args.aggregations,
      ...(args.groupBy ? { groupBy: args.groupBy } : {}),
      ...(args.where ? { where: args.where } : {}),
      limit: (args.limit as number | undefined) ?? this.config.agentGateway.maxRows,
    };
    const answer = await this.bus.request(GovernedQuery, { principal, query });
    const groups = answer.groups ?? answer.records ?? [];
    const page = cutToBytes(groups, this.config.agentGateway.maxResultBytes);
    const truncated = page.cut > 0 || Boolean(answer.nextCursor);
    const head = `${page.rows.length} group(s) of ${object}${truncated ? '; truncated: narrow the filter or group by fewer fields' : ''}`;
    return this.ok(
      { object, groups: page.rows, rowCount: page.rows.length, truncated, untrusted: true },
      `${head}\n${untrustedBlock(page.json)}`,
      { rows: page.rows.length, truncated, bytes: page.bytes },
    );
  }

  private async getRecord(call: ToolCall, object: string, id: string): Promise<ToolOutcome> {
    const { record } = await this.bus.request(GovernedGet, { principal: call.principal, object, id });
    const page = cutToBytes([record], this.config.agentGateway.maxResultBytes);
    const ids = this.remember(call.session, object, page.rows);
    return this.ok({ object, record: page.rows[0], untrusted: true }, `${object} ${id}\n${untrustedBlock(page.json)}`, {
      rows: 1,
      recordIds: ids,
      bytes: page.bytes,
    });
  }

  private async listActions(principal: PrincipalSnapshot, object: string | undefined): Promise<ToolOutcome> {
    const { actions } = await this.bus.request(ListGovernedActions, { principal, ...(object ? { object } : {}) });
    const page = cutToBytes(actions, this.config.agentGateway.maxResultBytes);
    const truncated = page.cut > 0;
    const lines = page.rows.map(
      (a) => `- ${String(a.object)}.${String(a.name)}${a.label ? ` (${String(a.label)})` : ''}: sets ${JSON.stringify(a.set)}`,
    );
    return this.ok(
      { actions: page.rows, rowCount: page.rows.length, truncated },
      [`${page.rows.length} action(s)${truncated ? '; truncated: ask for one object' : ''}`, ...lines].join('\n'),
      { rows: page.rows.length, truncated },
    );
  }

  private async pendingState(principal: PrincipalSnapshot, id: string): Promise<ToolOutcome> {
    const state = await this.bus.request(GetPendingActionState, { proposer: proposerOf(principal), id });
    const outcome = state.outcome ? ` (${[state.outcome.code, state.outcome.message].filter(Boolean).join(': ')})` : '';
    const what = [state.kind, state.object, state.recordId].filter(Boolean).join(' ');
    return this.ok({ pendingAction: state }, `Pending action ${state.id}${what ? ` (${what})` : ''}: ${state.state}${outcome}`, {
      recordIds: state.recordId ? [state.recordId] : [],
    });
  }

  private async file(call: ToolCall, proposal: Omit<Proposal, 'context'>): Promise<ToolOutcome> {
    const recordsRead = [...call.session.recordsRead.values()].slice(-MAX_RECORDS_READ);
    const filed: FiledAction = await this.bus.request(FilePendingAction, {
      proposer: proposerOf(call.principal),
      proposal: {
        ...proposal,
        context: {
          sessionId: call.session.id,
          ...(call.toolCallId ? { toolCallId: call.toolCallId.slice(0, 128) } : {}),
          ...(call.conversationId ? { conversationId: call.conversationId.slice(0, 128) } : {}),
          ...(recordsRead.length > 0 ? { recordsRead } : {}),
        },
      },
    });
    const diff = Object.entries(filed.diff as Record<string, { from?: unknown; to?: unknown; hidden?: boolean }>).map(([field, d]) =>
      d.hidden ? `${field}: changed (hidden)` : `${field}: ${JSON.stringify(d.from)} → ${JSON.stringify(d.to)}`,
    );
    const text = [
      `Filed pending action ${filed.id}: ${filed.state}, needs ${filed.requiredApprovals} approval(s), expires ${filed.expiresAt}.`,
      'Nothing has changed yet; a human reviewer decides. Follow it with get_pending_action.',
      'Diff the reviewers see:',
      untrustedBlock(diff),
    ].join('\n');
    return this.ok({ pendingAction: filed, applied: false, untrusted: true }, text, {
      recordIds: proposal.recordId ? [proposal.recordId] : [],
      pendingActionId: filed.id,
    });
  }

  private ok(structured: Record<string, unknown>, text: string, about: Omit<ToolOutcome, 'result' | 'outcome'> = {}): ToolOutcome {
    return { result: { content: [{ type: 'text', text }], structuredContent: structured }, outcome: 'success', ...about };
  }

  /** Records the session has shown the agent, for the context of its later proposals. */
  private remember(session: ToolSession, object: string, rows: ReadonlyArray<Record<string, unknown>>): string[] {
    const ids: string[] = [];
    for (const row of rows) {
      if (typeof row.id !== 'string') continue;
      ids.push(row.id);
      const key = `${object}:${row.id}`;
      session.recordsRead.delete(key);
      session.recordsRead.set(key, { object, id: row.id });
      if (session.recordsRead.size > MAX_RECORDS_READ) session.recordsRead.delete(session.recordsRead.keys().next().value as string);
    }
    return ids;
  }

  private async record(call: ToolCall, started: number, outcome: ToolOutcome): Promise<void> {
    await this.audit.record(call.principal, this.event(call, started, outcome));
  }

  /** The call's `agent.tool.called` event. */
  private event(call: ToolCall, started: number, outcome: ToolOutcome): Parameters<GatewayAudit['record']>[1] {
    const result = outcome.result.structuredContent;
    return {
      action: 'agent.tool.called',
      outcome: outcome.outcome,
      target: { type: 'tool', id: call.name.slice(0, 64) },
      details: {
        tool: call.name.slice(0, 64),
        input: redactArguments(call.args),
        ...(outcome.rows !== undefined ? { resultRows: outcome.rows } : {}),
        resultBytes: outcome.bytes ?? (result ? Buffer.byteLength(JSON.stringify(result)) : 0),
        ...(outcome.truncated !== undefined ? { truncated: outcome.truncated } : {}),
        ...(outcome.recordIds && outcome.recordIds.length > 0 ? { recordIds: outcome.recordIds.slice(0, 200) } : {}),
        ...(outcome.pendingActionId ? { pendingActionId: outcome.pendingActionId } : {}),
        latencyMs: Date.now() - started,
        mcpSessionId: call.session.id,
        ...(outcome.error ? { error: outcome.error } : {}),
      },
    };
  }
}

export function proposerOf(p: PrincipalSnapshot): Proposer {
  return {
    userId: p.userId,
    orgId: p.orgId,
    ...(p.sessionId ? { sessionId: p.sessionId } : {}),
    ...(p.apiKeyId ? { apiKeyId: p.apiKeyId } : {}),
    ...(p.agent ? { agent: { clientId: p.agent.clientId, name: p.agent.name, scopes: [...p.agent.scopes] } } : {}),
  };
}

const MAX_AUDITED_STRING = 500;

/**
 * The arguments as audited: record values and definitions by field name only (the pending action
 * and approvals' audit hold the values), long strings cut; the outbox writer then replaces
 * secret-looking values with keyed hashes.
 */
export function redactArguments(args: Args | undefined): Record<string, unknown> {
  if (!args) return {};
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(args).slice(0, 32)) {
    if ((key === 'values' || key === 'definition') && value && typeof value === 'object')
      out[key] = { fields: Object.keys(value).slice(0, 200) };
    else if (key === 'cursor') out[key] = '[cursor]';
    else if (typeof value === 'string') out[key] = value.slice(0, MAX_AUDITED_STRING);
    else {
      const text = JSON.stringify(value) ?? 'null';
      out[key] = text.length > 2000 ? `${text.slice(0, 2000)}…` : value;
    }
  }
  return out;
}
