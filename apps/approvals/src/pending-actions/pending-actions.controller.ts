import { Body, Controller, Get, Headers, HttpCode, Inject, Param, Post, Query, Req, Res } from '@nestjs/common';
import { ErrorCode, PENDING_ACTION_STATES, ProposalSchema, type FiledAction, type PrincipalSnapshot } from '@custodian/contracts';
import { API_PREFIX, CustodianException, RequirePolicy, assertValid, ApiContract } from '@custodian/platform';
import { Type } from '@sinclair/typebox';
import type { Request, Response } from 'express';
import { PendingActionApplier } from './pending-action-applier.service';
import { PendingActionBulk, stateOf } from './pending-action-bulk.service';
import { MAX_PAGE, PendingActionsService, type PendingActionDetail, type PendingActionSummary } from './pending-actions.service';
import { BulkAnswer, DecisionAnswer, FiledActionAnswer, PendingActionDetailAnswer, PendingActionPage } from '../approvals.api-schemas';

type AuthedRequest = Request & { principal: PrincipalSnapshot };

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const MAX_BULK = 1000;

const ListQuerySchema = Type.Object(
  {
    status: Type.Optional(Type.Union(PENDING_ACTION_STATES.map((s) => Type.Literal(s)))),
    object: Type.Optional(Type.String({ pattern: '^[a-z][a-z0-9_]{0,27}$' })),
    requester: Type.Optional(Type.String({ format: 'uuid' })),
    agent: Type.Optional(Type.String({ minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9][A-Za-z0-9_.:-]*$' })),
    waitingForMe: Type.Optional(Type.Union([Type.Literal('true'), Type.Literal('false')])),
    mine: Type.Optional(Type.Union([Type.Literal('true'), Type.Literal('false')])),
    cursor: Type.Optional(Type.String({ pattern: '^[1-9][0-9]{0,17}$' })),
    limit: Type.Optional(Type.String({ pattern: '^[0-9]{1,3}$' })),
  },
  { additionalProperties: false },
);
const Text = (max: number) => Type.String({ minLength: 1, maxLength: max, pattern: '^[^\\u0000]*$' });
const ApproveSchema = Type.Object(
  { revision: Type.Optional(Type.Integer({ minimum: 1 })), comment: Type.Optional(Text(2000)) },
  { additionalProperties: false },
);
const RejectSchema = Type.Object(
  { revision: Type.Optional(Type.Integer({ minimum: 1 })), reason: Text(2000) },
  { additionalProperties: false },
);
const CancelSchema = Type.Object({ reason: Type.Optional(Text(2000)) }, { additionalProperties: false });
const CommentSchema = Type.Object({ body: Text(2000) }, { additionalProperties: false });
const BulkSchema = Type.Object(
  {
    items: Type.Array(
      Type.Object(
        {
          id: Type.String({ format: 'uuid' }),
          decision: Type.Union([Type.Literal('approve'), Type.Literal('reject')]),
          revision: Type.Optional(Type.Integer({ minimum: 1 })),
          reason: Type.Optional(Text(2000)),
        },
        { additionalProperties: false },
      ),
      { minItems: 1, maxItems: MAX_BULK },
    ),
  },
  { additionalProperties: false },
);

function actionId(id: string): string {
  if (!UUID.test(id)) throw CustodianException.notFound('Pending action not found');
  return id;
}

/** `If-Match: "<revision>"` (a strong tag) names the revision the reviewer saw; a body `revision` may say the same. */
function revisionOf(header: string | undefined, body: number | undefined): number | undefined {
  if (header === undefined) return body;
  const match = /^"([1-9][0-9]{0,8})"$/.exec(header.trim());
  if (!match)
    throw new CustodianException(ErrorCode.ValidationFailed, 'If-Match must be the strong tag of a revision, e.g. "2"', {
      issues: [{ path: '/headers/if-match', message: 'a quoted revision number' }],
    });
  const revision = Number(match[1]);
  if (body !== undefined && body !== revision)
    throw new CustodianException(ErrorCode.ValidationFailed, 'If-Match and revision disagree', {
      issues: [{ path: '/revision', message: 'differs from If-Match' }],
    });
  return revision;
}

/**
 * The pending-action queue over REST (docs/approvals.md). Who may do what is decided per action
 * (its approval policy's approver capability, separation of duties, read access to the target),
 * so the routes themselves ask only for a signed-in caller.
 */
@Controller(`${API_PREFIX}/approvals`)
export class PendingActionsController {
  constructor(
    @Inject(PendingActionsService) private readonly actions: PendingActionsService,
    @Inject(PendingActionApplier) private readonly applier: PendingActionApplier,
    @Inject(PendingActionBulk) private readonly bulkDecisions: PendingActionBulk,
  ) {}

  @RequirePolicy({ reason: 'reviewers see the org queue, everyone else only their own proposals (decided in the service)' })
  @ApiContract({
    summary: 'The queue: the caller’s own proposals, or what reviewers may decide',
    query: ListQuerySchema,
    responses: { 200: PendingActionPage },
  })
  @Get()
  list(@Req() req: AuthedRequest, @Query() query: unknown): Promise<{ items: PendingActionSummary[]; nextCursor: string | null }> {
    const q = assertValid(ListQuerySchema, query, { what: 'query' });
    const limit = q.limit === undefined ? 50 : Number(q.limit);
    if (limit < 1 || limit > MAX_PAGE)
      throw new CustodianException(ErrorCode.ValidationFailed, 'Invalid limit', {
        issues: [{ path: '/limit', message: `must be between 1 and ${MAX_PAGE}` }],
      });
    return this.actions.list(req.principal, {
      ...(q.status ? { status: q.status } : {}),
      ...(q.object ? { object: q.object } : {}),
      ...(q.requester ? { requester: q.requester } : {}),
      ...(q.agent ? { agent: q.agent } : {}),
      waitingForMe: q.waitingForMe === 'true',
      mine: q.mine === 'true',
      ...(q.cursor ? { cursor: q.cursor } : {}),
      limit,
    });
  }

  /** Proposes a change; objects' dry-run validates it under the caller's permission before it is queued. */
  @RequirePolicy({ reason: 'anyone may propose; the dry-run decides under the caller’s own permission (user ∩ agent)' })
  @ApiContract({
    summary: 'Propose a change (validated by a dry run under the caller’s permission)',
    body: ProposalSchema,
    responses: { 201: FiledActionAnswer },
    problems: ['object_not_found', 'action_not_allowed', 'field_not_editable', 'conflict'],
  })
  @Post()
  @HttpCode(201)
  file(@Req() req: AuthedRequest, @Body() body: unknown): Promise<FiledAction> {
    const proposal = assertValid(ProposalSchema, body, { what: 'proposal' });
    return this.actions.file(PendingActionsService.proposerOf(req.principal), proposal);
  }

  @RequirePolicy({ reason: 'the proposer, or a reviewer holding the action’s approver capability who can read its target' })
  @ApiContract({ responses: { 200: PendingActionDetailAnswer } })
  @Get(':id')
  async get(@Req() req: AuthedRequest, @Param('id') id: string, @Res({ passthrough: true }) res: Response): Promise<PendingActionDetail> {
    const detail = await this.actions.get(req.principal, actionId(id));
    res.setHeader('ETag', `"${detail.revision}"`);
    return detail;
  }

  @RequirePolicy({ reason: 'checked per action: its approver capability, separation of duties, read access to the target' })
  @ApiContract({
    body: ApproveSchema,
    headers: { 'if-match': { description: 'the revision the reviewer saw, e.g. "2"' } },
    responses: { 200: DecisionAnswer },
    problems: ['conflict', 'precondition_failed'],
  })
  @Post(':id/approve')
  @HttpCode(200)
  async approve(
    @Req() req: AuthedRequest,
    @Param('id') id: string,
    @Headers('if-match') ifMatch: string | undefined,
    @Body() body: unknown,
  ) {
    const input = assertValid(ApproveSchema, body ?? {}, { what: 'approval' });
    const row = await this.actions.approve(req.principal, actionId(id), revisionOf(ifMatch, input.revision), input.comment);
    return stateOf(row.state === 'approved' ? ((await this.applier.apply(row.id, { wait: true })) ?? row) : row);
  }

  @RequirePolicy({ reason: 'checked per action: its approver capability, separation of duties, read access to the target' })
  @ApiContract({
    body: RejectSchema,
    headers: { 'if-match': {} },
    responses: { 200: DecisionAnswer },
    problems: ['conflict', 'precondition_failed'],
  })
  @Post(':id/reject')
  @HttpCode(200)
  async reject(
    @Req() req: AuthedRequest,
    @Param('id') id: string,
    @Headers('if-match') ifMatch: string | undefined,
    @Body() body: unknown,
  ) {
    const input = assertValid(RejectSchema, body, { what: 'rejection' });
    return stateOf(await this.actions.reject(req.principal, actionId(id), revisionOf(ifMatch, input.revision), input.reason));
  }

  @RequirePolicy({ reason: 'only the requester may cancel their own proposal (checked in the service)' })
  @ApiContract({ body: CancelSchema, responses: { 200: DecisionAnswer }, problems: ['conflict'] })
  @Post(':id/cancel')
  @HttpCode(200)
  async cancel(@Req() req: AuthedRequest, @Param('id') id: string, @Body() body: unknown) {
    const input = assertValid(CancelSchema, body ?? {}, { what: 'cancellation' });
    return stateOf(await this.actions.cancel(req.principal, actionId(id), input.reason ?? null));
  }

  @RequirePolicy({ reason: 'whoever may read the action may comment on it (checked in the service)' })
  @ApiContract({ body: CommentSchema, responses: { 204: null } })
  @Post(':id/comments')
  @HttpCode(204)
  async comment(@Req() req: AuthedRequest, @Param('id') id: string, @Body() body: unknown): Promise<void> {
    const input = assertValid(CommentSchema, body, { what: 'comment' });
    await this.actions.comment(req.principal, actionId(id), input.body);
  }

  /** Decides many; each item is checked on its own and answers for itself (PendingActionBulk). */
  @RequirePolicy({ reason: 'each item is checked on its own, as its single-item route would be' })
  @ApiContract({ body: BulkSchema, responses: { 200: BulkAnswer } })
  @Post('bulk')
  @HttpCode(200)
  async bulk(@Req() req: AuthedRequest, @Body() body: unknown) {
    const input = assertValid(BulkSchema, body, { what: 'bulk decision' });
    return { results: await this.bulkDecisions.decide(req.principal, input.items) };
  }
}
