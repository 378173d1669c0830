import { Inject, Injectable } from '@nestjs/common';
import { createHash } from 'node:crypto';
import { AuditEventRecorded, ErrorCode, GetAuditProof, type AuditProof, type PrincipalSnapshot } from '@custodian/contracts';
import { BUS, canonicalJson, CustodianException, LOGGER, OutboxWriter, SERVICE_DATA_SOURCE, type Bus } from '@custodian/platform';
import type { Logger } from 'pino';
import type { DataSource } from 'typeorm';
import { ConversationRunner } from './conversation-runner';
import { appendRuntimeEvent } from './runtime-audit';
import { runtimeStore, type Conversation, type StoredMessage } from './runtime-store';

/** Audit events one export lists at most (as many as a proof request may ask about). */
const MAX_EXPORT_EVENTS = 1000;

/** One audit event the runtime wrote about the conversation, and where it stands in the org's chain. */
export type ExportedAuditEvent =
  | { id: string; action: string; occurredAt: string; stored: false }
  | {
      id: string;
      action: string;
      occurredAt: string;
      stored: true;
      seq: number;
      prevHash: string | null;
      rowHash: string | null;
      archived: boolean;
      /** The event exactly as the audit service stored (and hashed) it. */
      event: Record<string, unknown>;
    };

/** What the digest covers: everything the export answers but `sha256` and `auditEventId`. */
export interface ConversationExportBody {
  format: 'custodian.agent.conversation-export.v1';
  conversation: Conversation;
  messages: StoredMessage[];
  egress: Array<Record<string, unknown>>;
  audit: {
    chainId: string;
    /** False when the caller's own audit access hides something (ADR 0012): every hash is null. */
    hashes: boolean;
    events: ExportedAuditEvent[];
    /** More events than MAX_EXPORT_EVENTS were written: the oldest ones are listed. */
    truncated: boolean;
    checkpoint: AuditProof['checkpoint'];
    publicKeys: string[];
  };
  exportedAt: string;
}

export type ConversationExport = ConversationExportBody & { sha256: string; auditEventId: string };

/**
 * One conversation as evidence (docs/agent-runtime.md, "Export"): its messages, egress records and
 * every audit event the runtime wrote about it, each with its place in the org's tamper-evident
 * chain as the audit service stored it, plus the newest signed checkpoint. The digest is SHA-256
 * over the body's canonical JSON (RFC 8785); the export itself is audited with that digest.
 */
@Injectable()
export class ConversationExportService {
  constructor(
    @Inject(ConversationRunner) private readonly runner: ConversationRunner,
    @Inject(SERVICE_DATA_SOURCE) private readonly ds: DataSource,
    @Inject(OutboxWriter) private readonly outbox: OutboxWriter,
    @Inject(BUS) private readonly bus: Bus,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  async export(caller: PrincipalSnapshot, id: string): Promise<ConversationExport> {
    const conversation = await this.runner.own(caller, id);
    const [messages, egress, written] = await Promise.all([
      runtimeStore.messages(this.ds, conversation.id),
      runtimeStore.egressOf(this.ds, conversation.id),
      runtimeStore.auditEventsOf(this.ds, conversation, AuditEventRecorded.subject, MAX_EXPORT_EVENTS + 1),
    ]);
    const truncated = written.length > MAX_EXPORT_EVENTS;
    written.splice(MAX_EXPORT_EVENTS);
    const proof = await this.proof(
      caller,
      written.map((e) => e.id),
    );
    const stored = new Map(proof.events.map((e) => [e.id, e]));
    const body: ConversationExportBody = {
      format: 'custodian.agent.conversation-export.v1',
      conversation,
      messages,
      egress,
      audit: {
        chainId: proof.chainId,
        hashes: proof.hashes,
        events: written.map((w): ExportedAuditEvent => {
          const s = stored.get(w.id);
          return s
            ? { ...w, stored: true, seq: s.seq, prevHash: s.prevHash, rowHash: s.rowHash, archived: s.archived, event: s.event }
            : { ...w, stored: false };
        }),
        truncated,
        checkpoint: proof.checkpoint,
        publicKeys: proof.publicKeys,
      },
      exportedAt: new Date().toISOString(),
    };
    const sha256 = createHash('sha256').update(canonicalJson(body), 'utf8').digest('hex');
    const event = await this.ds.transaction((m) =>
      appendRuntimeEvent(this.outbox, m, caller, {
        action: 'agent.conversation.exported',
        outcome: 'success',
        target: { type: 'conversation', id: conversation.id },
        details: { sha256, messages: messages.length, auditEvents: body.audit.events.length },
      }),
    );
    // The audit event holding the digest is the proof of the export itself: its chain hash shows it was not rewritten since.
    return { ...body, sha256, auditEventId: event.id };
  }

  /**
   * Asks the audit service where the events stand. An owner who also reads the audit log gets
   * hashes only if that reading hides nothing (ADR 0012): such a reader sees the org's other events
   * with their ids, so a hash next to one with a hidden value would let them test guesses of it.
   */
  private async proof(caller: PrincipalSnapshot, ids: string[]): Promise<AuditProof> {
    const viewer = caller.capabilities.includes('view_audit')
      ? {
          userId: caller.userId,
          orgId: caller.orgId,
          ...(caller.sessionId ? { sessionId: caller.sessionId } : {}),
          ...(caller.apiKeyId ? { apiKeyId: caller.apiKeyId } : {}),
        }
      : undefined;
    try {
      return await this.bus.request(GetAuditProof, { orgId: caller.orgId, service: 'agent-gateway', ids, ...(viewer ? { viewer } : {}) });
    } catch (err) {
      this.logger.warn({ err }, 'conversation export: the audit service did not answer');
      throw new CustodianException(
        ErrorCode.ServiceUnavailable,
        'The conversation cannot be exported now: the audit service, which holds its proof, did not answer',
      );
    }
  }
}
