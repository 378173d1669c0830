import { Body, Controller, Get, Inject, Param, Post, Req, Res } from '@nestjs/common';
import { ErrorCode, type PrincipalSnapshot } from '@custodian/contracts';
import { API_PREFIX, CustodianException, RequirePolicy, ApiContract } from '@custodian/platform';
import type { Request, Response } from 'express';
import { ConversationExportService, type ConversationExport } from './conversation-export.service';
import { ConversationRunner, type RuntimeEvent } from './conversation-runner';
import type { Conversation } from './runtime-store';
import { AnyObject, ConversationAnswer, ConversationList } from '../agent-gateway.api-schemas';

type AuthedRequest = Request & { principal: PrincipalSnapshot };
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const MAX_MESSAGE_CHARS = 32_000;

function invalid(path: string, message: string): CustodianException {
  return new CustodianException(ErrorCode.ValidationFailed, 'Invalid request', { issues: [{ path, message }] });
}

/**
 * `/api/v1/agent/conversations`: a user talks to an agent profile. Conversations belong to their
 * user; anyone else (an admin included) gets 404, as for a conversation that does not exist.
 * Agents cannot drive conversations (a delegated credential is refused): an agent acts in one, it
 * does not start another. The controller parses and shapes answers; the runner and the export
 * service do the work.
 */
@Controller(`${API_PREFIX}/agent/conversations`)
export class ConversationsController {
  constructor(
    @Inject(ConversationRunner) private readonly runner: ConversationRunner,
    @Inject(ConversationExportService) private readonly exporter: ConversationExportService,
  ) {}

  @ApiContract({ body: AnyObject, responses: { 201: ConversationAnswer } })
  @Post()
  @RequirePolicy({ capabilities: ['agent_access'] })
  async start(@Req() req: AuthedRequest, @Body() body: unknown): Promise<Conversation> {
    const b = body as Record<string, unknown> | null;
    if (!b || typeof b !== 'object' || Array.isArray(b) || Object.keys(b).some((k) => k !== 'profileId'))
      throw invalid('/', '{ "profileId": "…" }');
    if (typeof b.profileId !== 'string' || !UUID.test(b.profileId)) throw invalid('/profileId', 'an agent profile id');
    return this.runner.start(req.principal, b.profileId);
  }

  @ApiContract({ responses: { 200: ConversationList } })
  @Get()
  @RequirePolicy({ capabilities: ['agent_access'] })
  async list(@Req() req: AuthedRequest): Promise<{ items: Conversation[]; nextCursor: null }> {
    return { items: await this.runner.conversations(req.principal), nextCursor: null };
  }

  @ApiContract({ responses: { 200: AnyObject } })
  @Get(':id')
  @RequirePolicy({ capabilities: ['agent_access'] })
  async get(@Req() req: AuthedRequest, @Param('id') id: string): Promise<Conversation & { messages: unknown[] }> {
    return this.runner.read(req.principal, id);
  }

  /**
   * Sends a message. With `Accept: text/event-stream` the answer streams as Server-Sent Events
   * (`message`, `delta`, `pending`, `state`, `done`); otherwise it answers once the turn ends.
   */
  @ApiContract({
    summary: 'Send a message; with Accept: text/event-stream the answer streams as Server-Sent Events',
    body: AnyObject,
    responses: { 200: AnyObject },
    problems: ['conflict', 'rate_limited'],
  })
  @Post(':id/messages')
  @RequirePolicy({ capabilities: ['agent_access'] })
  async post(@Req() req: AuthedRequest, @Res() res: Response, @Param('id') id: string, @Body() body: unknown): Promise<void> {
    const b = body as Record<string, unknown> | null;
    if (!b || typeof b !== 'object' || Array.isArray(b) || Object.keys(b).some((k) => k !== 'content'))
      throw invalid('/', '{ "content": "…" }');
    if (typeof b.content !== 'string' || b.content.trim().length === 0 || b.content.length > MAX_MESSAGE_CHARS)
      throw invalid('/content', `1 to ${MAX_MESSAGE_CHARS} characters`);
    // The runner checks ownership and state in the statement that starts the turn (404 / 409 before anything streams).
    if (!String(req.headers.accept ?? '').includes('text/event-stream')) {
      const { messages, state, lastError } = await this.runner.post(req.principal, id, b.content);
      res.status(200).json({ state, lastError, messages });
      return;
    }
    // Checked before the stream opens, so a refusal is still a problem+json answer.
    let streaming = false;
    const send = (e: RuntimeEvent): void => {
      if (!streaming) {
        res.status(200).setHeader('content-type', 'text/event-stream; charset=utf-8');
        res.setHeader('cache-control', 'no-cache, no-transform');
        res.setHeader('x-accel-buffering', 'no');
        // Each event goes out as it is written: no Nagle delay on the small writes.
        req.socket.setNoDelay(true);
        res.flushHeaders();
        streaming = true;
      }
      const { type, ...data } = e;
      res.write(`event: ${type}\ndata: ${JSON.stringify(data)}\n\n`);
    };
    await this.runner.post(req.principal, id, b.content, send);
    res.end();
  }

  /** Live events of a conversation (a pending action decided, a resumed turn) as Server-Sent Events. */
  @ApiContract({ summary: 'The conversation’s events as Server-Sent Events', responses: { 200: { contentType: 'text/event-stream' } } })
  @Get(':id/events')
  @RequirePolicy({ capabilities: ['agent_access'] })
  async events(@Req() req: AuthedRequest, @Res() res: Response, @Param('id') id: string): Promise<void> {
    const conversation = await this.runner.own(req.principal, id);
    res.status(200).setHeader('content-type', 'text/event-stream; charset=utf-8');
    res.setHeader('cache-control', 'no-cache, no-transform');
    res.setHeader('x-accel-buffering', 'no');
    req.socket.setNoDelay(true);
    res.flushHeaders();
    res.write(`event: state\ndata: ${JSON.stringify({ state: conversation.state })}\n\n`);
    const stop = this.runner.watch(conversation.id, (e) => {
      const { type, ...data } = e;
      res.write(`event: ${type}\ndata: ${JSON.stringify(data)}\n\n`);
    });
    const ping = setInterval(() => res.write(': ping\n\n'), 15_000);
    req.on('close', () => {
      clearInterval(ping);
      stop();
    });
  }

  /**
   * One conversation as evidence: its messages, every model request's egress record, every audit
   * event the runtime wrote about it with its place in the org's hash chain and the newest signed
   * checkpoint, and a SHA-256 digest of all that; the export itself is audited (docs/agent-runtime.md).
   */
  @ApiContract({ responses: { 200: AnyObject }, problems: ['service_unavailable'] })
  @Get(':id/export')
  @RequirePolicy({ capabilities: ['agent_access'] })
  async export(@Req() req: AuthedRequest, @Param('id') id: string): Promise<ConversationExport> {
    return this.exporter.export(req.principal, id);
  }
}
