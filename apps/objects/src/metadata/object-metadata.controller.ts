import { Body, Controller, Delete, Get, HttpCode, Inject, Param, Post, Put, Query, Req } from '@nestjs/common';
import { Type } from '@sinclair/typebox';
import type { PrincipalSnapshot } from '@custodian/contracts';
import { API_PREFIX, RequirePolicy, assertValid, ApiContract } from '@custodian/platform';
import { PolicyError } from '@custodian/policy';
import type { Request } from 'express';
import { RequestDecisionService } from '../decision/request-decision.service';
import { ObjectDefinitionReplaceSchema, ObjectDefinitionSchema } from './object-definition.schema';
import { ObjectMetadataService, type ObjectView } from './object-metadata.service';
import { ObjectAnswer, ObjectList } from '../objects.api-schemas';

type AuthedRequest = Request & { principal: PrincipalSnapshot };
const MANAGE_METADATA = { capabilities: ['manage_metadata'], proposeThroughApprovals: true } as const;

/**
 * `?view=caller`: the caller's own view even for a metadata manager — readable objects and fields
 * only, each field with the caller's access. Without it a manager gets the definitions in full
 * (what PUT takes back).
 */
const ViewQuery = Type.Object({ view: Type.Optional(Type.Literal('caller')) }, { additionalProperties: true });

function callerView(query: unknown): boolean {
  return assertValid(ViewQuery, query ?? {}, { what: 'metadata query' }).view === 'caller';
}

function objectName(name: string): string {
  if (!/^[a-z][a-z0-9_]{0,27}$/.test(name)) throw new PolicyError('object_not_found', { object: name.slice(0, 64) });
  return name;
}

@Controller(`${API_PREFIX}/meta/objects`)
export class ObjectMetadataController {
  constructor(
    @Inject(ObjectMetadataService) private readonly metadata: ObjectMetadataService,
    @Inject(RequestDecisionService) private readonly decisions: RequestDecisionService,
  ) {}

  /**
   * The objects the caller can see. With `manage_metadata` (and no `view=caller`), every definition
   * in full; otherwise only objects the caller may read (app access, R6), each with its readable
   * fields only (R5), each field with the caller's `access` (`edit` or `read`).
   */
  @RequirePolicy({ reason: 'every member sees the objects and fields they may read; definitions in full need manage_metadata' })
  @ApiContract({ summary: 'The objects the caller can see, with their fields', query: ViewQuery, responses: { 200: ObjectList } })
  @Get()
  async list(
    @Req() req: AuthedRequest,
    @Query() query: unknown,
  ): Promise<{ items: ObjectView[]; nextCursor: null; policyVersion: number }> {
    const own = callerView(query);
    const all = await this.metadata.list(req.principal.orgId);
    const { decision } = await this.decisions.forPrincipal(req.principal);
    const objects =
      decision.hasCapability('manage_metadata') && !own ? all : all.filter((o) => visible(decision, o)).map((o) => narrowed(decision, o));
    return { items: objects, nextCursor: null, policyVersion: req.principal.policyVersion };
  }

  @RequirePolicy({ reason: 'every member describes the objects and fields they may read' })
  @ApiContract({ query: ViewQuery, responses: { 200: ObjectAnswer }, problems: ['object_not_found'] })
  @Get(':name')
  async get(@Req() req: AuthedRequest, @Param('name') name: string, @Query() query: unknown): Promise<ObjectView> {
    const own = callerView(query);
    const { decision } = await this.decisions.forPrincipal(req.principal);
    const view = await this.metadata.get(req.principal.orgId, objectName(name)).catch(() => undefined);
    if (decision.hasCapability('manage_metadata') && view && !own) return view;
    if (!view || !visible(decision, view)) throw new PolicyError('object_not_found', { object: name });
    return narrowed(decision, view);
  }

  @RequirePolicy(MANAGE_METADATA)
  @ApiContract({ body: ObjectDefinitionSchema, responses: { 201: ObjectAnswer }, problems: ['conflict', 'invalid_metadata'] })
  @Post()
  create(@Req() req: AuthedRequest, @Body() body: unknown): Promise<ObjectView> {
    return this.metadata.create(req.principal, assertValid(ObjectDefinitionSchema, body, { what: 'object definition' }));
  }

  @RequirePolicy(MANAGE_METADATA)
  @ApiContract({
    body: ObjectDefinitionReplaceSchema,
    responses: { 200: ObjectAnswer },
    problems: ['object_not_found', 'conflict', 'precondition_failed', 'invalid_metadata'],
  })
  @Put(':name')
  replace(@Req() req: AuthedRequest, @Param('name') name: string, @Body() body: unknown): Promise<ObjectView> {
    const { version, sharingRules, ...definition } = assertValid(ObjectDefinitionReplaceSchema, body, { what: 'object definition' });
    return this.metadata.replace(req.principal, objectName(name), definition, { version, sharingRules });
  }

  @RequirePolicy(MANAGE_METADATA)
  @ApiContract({ responses: { 204: null }, problems: ['object_not_found', 'conflict'] })
  @Delete(':name')
  @HttpCode(204)
  remove(@Req() req: AuthedRequest, @Param('name') name: string): Promise<void> {
    return this.metadata.remove(req.principal, objectName(name));
  }
}

function visible(decision: { objectVisible(o: string): boolean; can(a: 'read', o: string): boolean }, o: ObjectView): boolean {
  return decision.objectVisible(o.name) && decision.can('read', o.name);
}

type FieldDecision = { readableFields(o: string): readonly string[]; editableFields(o: string): readonly string[] };

/** Fields below read never appear (R5), nor do sharing rules (they name criteria values). */
function narrowed(decision: FieldDecision, o: ObjectView): ObjectView {
  const readable = new Set(decision.readableFields(o.name));
  return withAccess(decision, {
    ...o,
    fields: o.fields.filter((f) => readable.has(f.name)).map(({ default: _d, ...f }) => f),
    sharingRules: [],
  });
}

/**
 * Each (readable) field says what the caller may do with it on an existing record (R5): `edit` or
 * `read`. Forms use it to disable read-only fields; the write path still decides (assertWritable).
 */
function withAccess(decision: FieldDecision, o: ObjectView): ObjectView {
  const editable = new Set(decision.editableFields(o.name));
  const fields = o.fields.map((f) => Object.assign({}, f, { access: editable.has(f.name) ? ('edit' as const) : ('read' as const) }));
  return { ...o, fields };
}
