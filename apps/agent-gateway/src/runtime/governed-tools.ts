import type { DescribedObject, PrincipalSnapshot } from '@custodian/contracts';
import { ToolCatalogService } from '../tools/tool-catalog.service';
import { ToolExecutor, UnknownToolError, type ToolSession } from '../tools/tool-executor.service';
import { MUTATING_TOOLS, type ToolName } from '../tools/tool-catalog';
import type { ToolResult } from '../tools/tool-output';

/** A tool as the model is offered it. */
export interface OfferedTool {
  name: string;
  description: string;
  inputSchema: Record<string, unknown>;
  mutating: boolean;
}

/** What the chat loop needs of the gateway's governed registry: the very tools MCP clients get, with the same checks. */
export interface GovernedTools {
  /** Exactly the tools this principal may call. */
  list(principal: PrincipalSnapshot): Promise<OfferedTool[]>;
  /** The objects as this principal sees them (for the egress policy's sensitive field names). */
  objects(principal: PrincipalSnapshot): Promise<DescribedObject[]>;
  /** Runs a call as the principal; `unknown` when the tool does not exist for it (never run). */
  call(
    principal: PrincipalSnapshot,
    name: string,
    args: Record<string, unknown> | undefined,
    ctx: { session: ToolSession; toolCallId: string; conversationId: string },
  ): Promise<ToolResult | 'unknown'>;
  /**
   * Runs a call like `call` but answers before its audit row is committed: the result may be
   * prepared for sending, but it leaves the process only as `settled()` returns it (once the row is
   * committed; a read whose row could not be written is withheld there) — or, with `deferAudit`,
   * once the caller committed `auditRow` (when the call has one) in the statement that stores it.
   */
  start(
    principal: PrincipalSnapshot,
    name: string,
    args: Record<string, unknown> | undefined,
    ctx: { session: ToolSession; toolCallId: string; conversationId: string; deferAudit?: boolean },
  ): Promise<StartedCall | 'unknown'>;
}

/** A tool call that ran, its audit row still being written (or, deferred, not yet written). */
export interface StartedCall {
  readonly result: ToolResult;
  /**
   * Deferred (`deferAudit`; reads only): the call's outbox row, not written. Whoever stores or sends
   * the result writes it first, in the same statement — or calls `settled()`, which writes it.
   */
  readonly auditRow?: { id: string; subject: string; payload: unknown };
  settled(): Promise<ToolResult>;
}

export const GOVERNED_TOOLS = Symbol('GOVERNED_TOOLS');

/** The in-process binding to the gateway's tool catalog and executor. */
export function governedTools(catalog: ToolCatalogService, executor: ToolExecutor): GovernedTools {
  return {
    async list(principal) {
      return (await catalog.toolsFor(principal)).map((t) => ({
        name: t.name,
        description: t.description,
        inputSchema: t.inputSchema,
        mutating: MUTATING_TOOLS.has(t.name as ToolName),
      }));
    },
    objects: (principal) => catalog.objects(principal),
    async call(principal, name, args, ctx) {
      const started = await this.start(principal, name, args, ctx);
      return started === 'unknown' ? started : started.settled();
    },
    async start(principal, name, args, ctx) {
      try {
        const call = { name, args, principal, session: ctx.session, toolCallId: ctx.toolCallId, conversationId: ctx.conversationId };
        const unsettled = ctx.deferAudit ? await executor.begin(call, { deferAudit: true }) : await executor.begin(call);
        return {
          result: unsettled.result,
          ...('auditRow' in unsettled ? { auditRow: unsettled.auditRow } : {}),
          settled: () => executor.settle(unsettled),
        };
      } catch (error) {
        if (error instanceof UnknownToolError) return 'unknown';
        throw error;
      }
    },
  };
}

export type { ToolSession, ToolResult };
