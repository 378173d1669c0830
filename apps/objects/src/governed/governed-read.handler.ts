import { Inject, Injectable, type OnApplicationBootstrap } from '@nestjs/common';
import {
  DescribeObjects,
  GovernedGet,
  GovernedQuery,
  ListGovernedActions,
  type DescribedField,
  type DescribedObject,
  type PrincipalSnapshot,
  type RequestOf,
  type ResponseOf,
} from '@custodian/contracts';
import { BUS, requestContext, type Bus } from '@custodian/platform';
import { PolicyError, type Decision } from '@custodian/policy';
import { ActionsService } from '../actions/actions.service';
import { RequestDecisionService } from '../decision/request-decision.service';
import type { FieldDefinition, StoredObjectDefinition } from '../metadata/object-definition.schema';
import { parseObjectQl } from '../records/list-spec.parser';
import { objectParam } from '../records/records.controller';
import { RecordQueryService } from '../records/record-query.service';
import { GovernedRefusals } from './governed-refusals';

/** Text fields without a stored maxLength accept this many characters (metadata/field-types.ts). */
const DEFAULT_TEXT_LENGTH = 255;
const MAX_ACTIONS = 5000;

type Described = ResponseOf<typeof DescribeObjects>;
type Actions = ResponseOf<typeof ListGovernedActions>['actions'];

/** An object exists for the principal when its app and the agent allowlist admit it and it may be read. */
function readable(decision: Decision, object: string): boolean {
  return decision.objectVisible(object) && decision.can('read', object);
}

function describeField(f: FieldDefinition, editable: ReadonlySet<string>): DescribedField {
  const maxLength = f.type === 'text' ? (f.maxLength ?? DEFAULT_TEXT_LENGTH) : undefined;
  return {
    name: f.name,
    ...(f.label !== undefined ? { label: f.label } : {}),
    type: f.type,
    required: f.required === true,
    editable: editable.has(f.name),
    sensitive: f.sensitive === true,
    ...(f.options ? { enum: [...f.options] } : {}),
    ...(f.reference ? { reference: f.reference } : {}),
    ...(maxLength !== undefined ? { maxLength } : {}),
  };
}

/** The object as this principal may see it: readable fields only, what it may do per its decision. */
export function describeObject(decision: Decision, def: StoredObjectDefinition): DescribedObject {
  const fields = new Set(decision.readableFields(def.name));
  const editable = new Set([...decision.editableFields(def.name, 'edit'), ...decision.editableFields(def.name, 'create')]);
  return {
    name: def.name,
    label: def.label,
    can: {
      read: decision.can('read', def.name),
      create: decision.can('create', def.name),
      edit: decision.can('edit', def.name),
      delete: decision.can('delete', def.name),
    },
    fields: def.fields.filter((f) => fields.has(f.name)).map((f) => describeField(f, editable)),
  };
}

/**
 * Governed reads over the bus, for the agent gateway: each question is answered by the same
 * services and Decision as the REST routes (records, metadata, actions), on the principal snapshot
 * the caller resolved from its bearer. The snapshot is used as sent — identity built it and a trusted
 * service forwards it — and the replica is awaited at its policy version, as for a REST request.
 * Refusals are audited like REST refusals and travel as the bus error envelope with their codes.
 * Unlike REST, `manage_metadata` does not reveal full definitions here: these are data reads.
 */
@Injectable()
export class GovernedReadBusHandlers implements OnApplicationBootstrap {
  constructor(
    @Inject(BUS) private readonly bus: Bus,
    @Inject(RecordQueryService) private readonly records: RecordQueryService,
    @Inject(RequestDecisionService) private readonly decisions: RequestDecisionService,
    @Inject(ActionsService) private readonly actions: ActionsService,
    @Inject(GovernedRefusals) private readonly refusals: GovernedRefusals,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    await this.bus.handle(DescribeObjects, (req) =>
      this.governed(DescribeObjects.subject, req.principal, { type: req.object ?? 'objects' }, () => this.describe(req)),
    );
    await this.bus.handle(GovernedQuery, (req) =>
      this.governed(GovernedQuery.subject, req.principal, { type: typeof req.query.object === 'string' ? req.query.object : 'query' }, () =>
        this.query(req),
      ),
    );
    await this.bus.handle(GovernedGet, (req) =>
      this.governed(GovernedGet.subject, req.principal, { type: req.object, id: req.id }, async () => ({
        record: await this.records.get(req.principal, req.object, req.id),
      })),
    );
    await this.bus.handle(ListGovernedActions, (req) =>
      this.governed(ListGovernedActions.subject, req.principal, { type: req.object ?? 'objects' }, () => this.listActions(req)),
    );
  }

  /** `POST /api/v1/query`: the same parser and service call, so limits, cursors, expand and aggregations match. */
  async query(req: RequestOf<typeof GovernedQuery>): Promise<ResponseOf<typeof GovernedQuery>> {
    const { spec, raw } = parseObjectQl(req.query);
    return this.records.query(req.principal, { ...spec, object: objectParam(spec.object) }, raw);
  }

  /** `GET meta/objects[/:name]` as this principal sees it, shaped for tools. */
  async describe(req: RequestOf<typeof DescribeObjects>): Promise<Described> {
    const { decision, catalog } = await this.decisions.forPrincipal(req.principal);
    if (req.object !== undefined) {
      const def = catalog.definitions.get(req.object);
      if (!def || !readable(decision, req.object)) throw new PolicyError('object_not_found', { object: req.object });
      return { objects: [describeObject(decision, def)], policyVersion: req.principal.policyVersion };
    }
    const defs = [...catalog.definitions.values()].filter((d) => readable(decision, d.name)).sort((a, b) => a.name.localeCompare(b.name));
    return { objects: defs.map((d) => describeObject(decision, d)), policyVersion: req.principal.policyVersion };
  }

  /** `GET meta/objects/:name/actions` (values of unreadable fields removed); without a name, every readable object's. */
  async listActions(req: RequestOf<typeof ListGovernedActions>): Promise<ResponseOf<typeof ListGovernedActions>> {
    const { decision, catalog } = await this.decisions.forPrincipal(req.principal);
    let names: string[];
    if (req.object !== undefined) {
      if (!catalog.definitions.has(req.object) || !readable(decision, req.object))
        throw new PolicyError('object_not_found', { object: req.object });
      names = [req.object];
    } else {
      names = [...catalog.definitions.keys()].filter((n) => readable(decision, n)).sort();
    }
    const actions: Actions = [];
    for (const object of names) {
      const fields = new Set(decision.readableFields(object));
      for (const a of await this.actions.list(req.principal.orgId, object)) {
        if (actions.length >= MAX_ACTIONS) return { actions };
        actions.push({
          name: a.name,
          object: a.object,
          label: a.label,
          ...(a.description !== undefined ? { description: a.description } : {}),
          kind: a.kind,
          set: Object.fromEntries(Object.entries(a.set).filter(([field]) => fields.has(field))),
          requiresApproval: a.requiresApproval,
        });
      }
    }
    return { actions };
  }

  /**
   * Runs one answer as the principal (its audit events name it and its agent); a refusal is
   * audited as the REST routes audit theirs.
   */
  private governed<T>(
    subject: string,
    principal: PrincipalSnapshot,
    target: { type: string; id?: string },
    fn: () => Promise<T>,
  ): Promise<T> {
    const ctx = { requestId: requestContext.requestId() ?? `bus-${Date.now()}`, principal };
    return requestContext.run(ctx, async () => {
      try {
        return await fn();
      } catch (error) {
        throw await this.refusals.audited(error, principal, subject, target);
      }
    });
  }
}
