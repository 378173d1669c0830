import { Body, Controller, Delete, Get, Headers, HttpCode, Inject, Param, Patch, Post, Query, Req, Res, UseFilters } from '@nestjs/common';
import { ErrorCode, type FiledAction, type PrincipalSnapshot } from '@custodian/contracts';
import { API_PREFIX, CustodianException, RequirePolicy, ApiContract } from '@custodian/platform';
import { PolicyError } from '@custodian/policy';
import type { Request, Response } from 'express';
import { parseListQuery, parseObjectQl } from './list-spec.parser';
import type { ListResult } from './record-query';
import { ApprovalGateService, type GateInput } from '../approvals/approval-gate.service';
import { RecordQueryService } from './record-query.service';
import { parseIfMatch } from './record-rows';
import { RecordWriteService } from './record-write.service';
import { DenialAuditFilter } from './denial-audit.filter';
import { AnyObject, ListQuery, PendingActionFiled, QueryAnswer, RecordAnswer, RecordList } from '../objects.api-schemas';

type AuthedRequest = Request & { principal: PrincipalSnapshot };

const GOVERNED = { reason: 'record access is decided per object, record and field by libs/policy' } as const;
const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,200}$/;

export function objectParam(name: string): string {
  if (!/^[a-z][a-z0-9_]{0,27}$/.test(name)) throw new PolicyError('object_not_found', { object: name.slice(0, 64) });
  return name;
}

/**
 * R7: an agent never changes records directly — its mutations are pending actions that approvals
 * applies through `objects.record.apply` after a human approved them. A delegated token that calls
 * a mutating REST route is refused, whatever its scopes.
 */
export function assertNotAgent(principal: PrincipalSnapshot): void {
  if (principal.agent)
    throw CustodianException.forbidden('Agents propose changes through approvals; direct writes are refused', { layer: 'agent_scope' });
}

// eslint-disable-next-line no-control-regex -- refusing control characters is the point
const JUSTIFICATION = /^[^\u0000-\u001f\u007f]{1,2000}$/;

/** `Custodian-Justification`: why a person makes a change that an approval policy will queue. */
function justificationOf(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  if (!JUSTIFICATION.test(header))
    throw new CustodianException(ErrorCode.ValidationFailed, 'Invalid Custodian-Justification', {
      issues: [{ path: '/headers/custodian-justification', message: '1-2000 characters, no control characters' }],
    });
  return header;
}

const isPlainObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** A page of records in the one list envelope (ADR 0018): `nextCursor` null on the last page; `limit`/`offset` not echoed. */
export interface RecordPage {
  items: Array<Record<string, unknown>>;
  nextCursor: string | null;
}

export function recordPage(result: ListResult): RecordPage {
  return { items: result.records, nextCursor: result.nextCursor ?? null };
}

function etag(record: Record<string, unknown>): string {
  return `"${String(record.version ?? '')}"`;
}

@UseFilters(DenialAuditFilter)
@Controller(API_PREFIX)
export class RecordsController {
  constructor(
    @Inject(RecordQueryService) private readonly records: RecordQueryService,
    @Inject(RecordWriteService) private readonly writes: RecordWriteService,
    @Inject(ApprovalGateService) private readonly gate: ApprovalGateService,
  ) {}

  /** A change an approval policy catches is filed, not written: 202 with the pending action. */
  private async gated(req: AuthedRequest, res: Response, input: GateInput): Promise<{ pendingAction: FiledAction } | undefined> {
    const filed = await this.gate.intercept(req.principal, {
      ...input,
      justification: justificationOf(req.header('custodian-justification')),
    });
    if (!filed) return undefined;
    res.status(202);
    res.setHeader('Location', `/${API_PREFIX}/approvals/${filed.id}`);
    return { pendingAction: filed };
  }

  @RequirePolicy(GOVERNED)
  @ApiContract({
    summary: 'List the records of an object the caller may read (row filter in SQL)',
    query: ListQuery,
    responses: { 200: RecordList },
    problems: [
      'object_not_found',
      'action_not_allowed',
      'field_not_readable',
      'invalid_value',
      'unknown_operator',
      'filter_too_deep',
      'filter_too_complex',
      'in_list_too_long',
      'value_too_long',
    ],
  })
  @Get('data/:object')
  async list(@Req() req: AuthedRequest, @Param('object') object: string, @Query() query: Record<string, unknown>): Promise<RecordPage> {
    return recordPage(await this.records.list(req.principal, parseListQuery(objectParam(object), query)));
  }

  @RequirePolicy(GOVERNED)
  @ApiContract({
    body: AnyObject,
    headers: { 'idempotency-key': {}, 'custodian-justification': {} },
    responses: { 201: RecordAnswer, 200: RecordAnswer, 202: PendingActionFiled },
    problems: [
      'object_not_found',
      'action_not_allowed',
      'field_not_editable',
      'system_field_not_writable',
      'invalid_value',
      'value_too_long',
      'conflict',
    ],
  })
  @Post('data/:object')
  async create(
    @Req() req: AuthedRequest,
    @Res({ passthrough: true }) res: Response,
    @Param('object') object: string,
    @Body() body: unknown,
    @Headers('idempotency-key') key?: string,
  ): Promise<Record<string, unknown>> {
    if (key !== undefined && !IDEMPOTENCY_KEY.test(key))
      throw new CustodianException(ErrorCode.ValidationFailed, 'Invalid Idempotency-Key', {
        issues: [{ path: '/headers/idempotency-key', message: '1-200 printable ASCII characters' }],
      });
    assertNotAgent(req.principal);
    if (isPlainObject(body)) {
      const filed = await this.gated(req, res, { operation: 'create', object: objectParam(object), values: body });
      if (filed) return filed;
    }
    const result = await this.writes.create(req.principal, objectParam(object), body, key);
    res.status(result.status);
    if (result.replayed) res.setHeader('Idempotent-Replayed', 'true');
    res.setHeader('ETag', etag(result.record));
    return result.record;
  }

  @RequirePolicy(GOVERNED)
  @ApiContract({ responses: { 200: RecordAnswer }, problems: ['object_not_found', 'action_not_allowed', 'field_not_readable'] })
  @Get('data/:object/:id')
  async get(
    @Req() req: AuthedRequest,
    @Res({ passthrough: true }) res: Response,
    @Param('object') object: string,
    @Param('id') id: string,
  ): Promise<Record<string, unknown>> {
    const record = await this.records.get(req.principal, objectParam(object), id);
    res.setHeader('ETag', etag(record));
    return record;
  }

  @RequirePolicy(GOVERNED)
  @ApiContract({
    body: AnyObject,
    headers: { 'if-match': { required: true }, 'custodian-justification': {} },
    responses: { 200: RecordAnswer, 202: PendingActionFiled },
    problems: [
      'object_not_found',
      'action_not_allowed',
      'field_not_editable',
      'system_field_not_writable',
      'invalid_value',
      'value_too_long',
      'precondition_failed',
      'conflict',
    ],
  })
  @Patch('data/:object/:id')
  async update(
    @Req() req: AuthedRequest,
    @Res({ passthrough: true }) res: Response,
    @Param('object') object: string,
    @Param('id') id: string,
    @Body() body: unknown,
    @Headers('if-match') ifMatch?: string,
  ): Promise<Record<string, unknown>> {
    assertNotAgent(req.principal);
    if (isPlainObject(body) && /^[0-9a-f-]{36}$/.test(id)) {
      const expectedVersion = parseIfMatch(ifMatch, true);
      const filed = await this.gated(req, res, {
        operation: 'update',
        object: objectParam(object),
        recordId: id,
        values: body,
        expectedVersion,
      });
      if (filed) return filed;
    }
    const result = await this.writes.update(req.principal, objectParam(object), id, body, ifMatch);
    res.setHeader('ETag', etag(result.record));
    return result.record;
  }

  @RequirePolicy(GOVERNED)
  @ApiContract({
    headers: { 'if-match': { required: true }, 'custodian-justification': {} },
    responses: { 204: null, 202: PendingActionFiled },
    problems: ['object_not_found', 'action_not_allowed', 'precondition_failed'],
  })
  @Delete('data/:object/:id')
  @HttpCode(204)
  async remove(
    @Req() req: AuthedRequest,
    @Res({ passthrough: true }) res: Response,
    @Param('object') object: string,
    @Param('id') id: string,
    @Headers('if-match') ifMatch?: string,
  ): Promise<void | { pendingAction: FiledAction }> {
    assertNotAgent(req.principal);
    if (/^[0-9a-f-]{36}$/.test(id)) {
      const expectedVersion = parseIfMatch(ifMatch, false);
      const filed = await this.gated(req, res, { operation: 'delete', object: objectParam(object), recordId: id, expectedVersion });
      if (filed) return filed;
    }
    await this.writes.remove(req.principal, objectParam(object), id, ifMatch);
  }

  /**
   * ObjectQL (docs/objects.md, "ObjectQL"): the same governed list as `GET data/:object`, as a JSON
   * body, in the same envelope; aggregations (`groupBy`/`aggregations`) answer `{groups}` as before.
   */
  @RequirePolicy(GOVERNED)
  @ApiContract({
    summary: 'ObjectQL: fields, where, orderBy, cursor, aggregations, groupBy, expand',
    body: AnyObject,
    responses: { 200: QueryAnswer },
    problems: [
      'object_not_found',
      'action_not_allowed',
      'field_not_readable',
      'invalid_value',
      'unknown_operator',
      'filter_too_deep',
      'filter_too_complex',
      'in_list_too_long',
      'value_too_long',
    ],
  })
  @Post('query')
  @HttpCode(200)
  async query(@Req() req: AuthedRequest, @Body() body: unknown): Promise<RecordPage | { groups: Array<Record<string, unknown>> }> {
    const { spec, raw } = parseObjectQl(body);
    const answer = await this.records.query(req.principal, { ...spec, object: objectParam(spec.object) }, raw);
    return 'groups' in answer ? answer : recordPage(answer);
  }
}
