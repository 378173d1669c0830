import type { RecordRow } from '../objectql/where.evaluator';
import { ownValue } from '../model/safe-input';
import type { FieldLevel } from '../model/principal-snapshot.schema';
import { LEVEL, levelName, type AccessLevel, type LevelRank, type ObjectAction, type RecordAction } from './access-level';
import type { GrantKey, ObjectGrant, PrincipalGrants } from './principal-grants';
import { recordLevel, type AccessContribution, type ExplainLayer } from './record-access.evaluator';
import type { RecordAccessFacts } from './record-access.facts';

export interface ExplainRequest {
  readonly action: ObjectAction;
  readonly object: string;
  /** A record: explains the record check (R4) on top of the type-level check. */
  readonly record?: RecordRow;
  /** Needed with `record`. */
  readonly facts?: RecordAccessFacts;
  /** A field: explains field security (R5) for read (read) or create/edit (edit). */
  readonly field?: string;
}

export type StepOutcome = 'allow' | 'deny' | 'grant' | 'pass';

export interface ExplainStep {
  readonly layer: ExplainLayer;
  readonly outcome: StepOutcome;
  /** Permission set, rule, share, capability, app or agent that the step is about. */
  readonly source?: string;
  readonly level?: AccessLevel;
  readonly detail?: string;
}

export interface Explanation {
  readonly allowed: boolean;
  /** The layer that decided: the first deny, or the first grant that met the requirement. */
  readonly decidedBy: ExplainLayer;
  readonly source?: string;
  /** Steps in the order they were consulted. */
  readonly steps: readonly ExplainStep[];
  readonly level?: AccessLevel;
  readonly required?: AccessLevel;
}

const GRANT_FOR_ACTION: Record<ObjectAction, GrantKey> = {
  read: 'read',
  create: 'create',
  edit: 'edit',
  delete: 'delete',
  transfer: 'transfer',
  share: 'read',
};

function deny(steps: ExplainStep[], layer: ExplainLayer, source?: string, detail?: string): Explanation {
  steps.push({ layer, outcome: 'deny', source, detail });
  return { allowed: false, decidedBy: layer, source, steps };
}

/**
 * What explain needs from a Decision. Declared here (Decision satisfies it structurally) so that
 * explain.ts does not import decision.ts, which imports explain.ts.
 */
export interface ExplainableDecision {
  readonly grants: PrincipalGrants;
  editableFields(object: string, action?: 'edit' | 'create'): readonly string[];
  fieldLevel(object: string, field: string): FieldLevel;
  grantOf(object: string): ObjectGrant | undefined;
  requiredLevelFor(action: RecordAction): LevelRank;
}

export function explainDecision(decision: ExplainableDecision, request: ExplainRequest): Explanation {
  const { action, object, record, facts, field } = request;
  const steps: ExplainStep[] = [];
  const grants = decision.grants;

  if (record) {
    if (ownValue(record, 'org_id') !== grants.orgId) return deny(steps, 'tenant', grants.orgId, 'record is outside the organization');
    steps.push({ layer: 'tenant', outcome: 'pass', source: grants.orgId });
  }
  const grant = decision.grantOf(object);
  if (!grant) return deny(steps, 'object_permission', object, 'unknown object');
  if (grant.hiddenByApp) return deny(steps, 'app', grant.object.app, 'no access to the app');
  if (grant.object.app) steps.push({ layer: 'app', outcome: 'pass', source: grant.object.app });

  const agent = grants.snapshot.agent;
  if (agent) {
    if (grant.hiddenByAgent) return deny(steps, 'agent_scope', agent.name, 'object not in the agent allowlist');
    const scope = action === 'read' ? 'data:read' : 'data:write';
    if (!agent.scopes.includes(scope)) return deny(steps, 'agent_scope', agent.name, `missing scope ${scope}`);
    steps.push({ layer: 'agent_scope', outcome: 'pass', source: agent.name, detail: scope });
  }

  const sources = grant.sources[GRANT_FOR_ACTION[action]];
  if (sources.length === 0) return deny(steps, 'object_permission', undefined, `no permission set allows ${action}`);
  steps.push({ layer: 'object_permission', outcome: 'allow', source: sources.join(', ') });

  if (field !== undefined) {
    const level = decision.fieldLevel(object, field);
    const needEdit = action === 'edit' || action === 'create';
    const fieldGrant = grant.fields.get(field);
    const ok = needEdit ? decision.editableFields(object, action === 'create' ? 'create' : 'edit').includes(field) : level !== 'none';
    const source = fieldGrant?.source ?? undefined;
    if (!ok) {
      const sensitive = grant.object.fields.get(field)?.sensitive
        ? 'sensitive field not named by any permission set'
        : `field level ${level}`;
      return deny(steps, 'field_security', source, sensitive);
    }
    steps.push({ layer: 'field_security', outcome: 'allow', source, level: level === 'edit' ? 'edit' : 'read' });
    if (!record) return { allowed: true, decidedBy: 'field_security', source, steps };
  }

  if (!record || action === 'create') {
    return { allowed: true, decidedBy: 'object_permission', source: sources[0], steps };
  }
  if (!facts) return deny(steps, 'record_access', undefined, 'no directory facts supplied');

  const need = decision.requiredLevelFor(action);
  if (action === 'share' && need === LEVEL.read) steps.push({ layer: 'capability', outcome: 'pass', source: 'manage_sharing' });
  const trace: AccessContribution[] = [];
  const level = recordLevel(grants, object, record, facts, 3, trace);
  let decider: AccessContribution | undefined;
  for (const c of trace) {
    const meets = c.level >= need;
    steps.push({ layer: c.layer, outcome: c.level > 0 ? 'grant' : 'pass', source: c.source, level: levelName(c.level) });
    if (meets && !decider) decider = c;
  }
  if (decider) {
    return { allowed: true, decidedBy: decider.layer, source: decider.source, steps, level: levelName(level), required: levelName(need) };
  }
  steps.push({
    layer: 'record_access',
    outcome: 'deny',
    level: levelName(level),
    detail: `access ${levelName(level)} < required ${levelName(need)}`,
  });
  return { allowed: false, decidedBy: 'record_access', steps, level: levelName(level), required: levelName(need) };
}
