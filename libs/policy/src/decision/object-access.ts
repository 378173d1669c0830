import type { ObjectAction } from './access-level';
import type { ExplainTrace } from './explain';
import type { GrantKey, ObjectGrant, PrincipalGrants } from './principal-grants';

/** The permission-set grant each action needs; managing shares needs read (plus full record access). */
const GRANT_FOR_ACTION: Record<ObjectAction, GrantKey> = {
  read: 'read',
  create: 'create',
  edit: 'edit',
  delete: 'delete',
  transfer: 'transfer',
  share: 'read',
};

/**
 * The type-level check of one action on one object: app access, the agent's allowlist and scopes,
 * the permission sets — and that every action on an existing record also needs read, because a
 * record the principal cannot read answers 404 and so can be neither changed nor shared.
 *
 * This is the only copy of these rules: Decision builds its CASL ability from it, and explain runs
 * it again with a trace.
 */
export function objectActionAllowed(grants: PrincipalGrants, grant: ObjectGrant, action: ObjectAction, trace?: ExplainTrace): boolean {
  if (grant.hiddenByApp) return trace ? trace.deny('app', grant.object.app, 'no access to the app') : false;
  if (trace && grant.object.app) {
    const opened = grants.apps.has(grant.object.app) ? grant.object.app : (grants.allAppsBy ?? grant.object.app);
    trace.step({ layer: 'app', outcome: 'pass', source: opened });
  }
  const agent = grants.snapshot.agent;
  if (agent && grant.hiddenByAgent) return trace ? trace.deny('agent_scope', agent.name, 'object not in the agent allowlist') : false;
  if (action !== 'read' && action !== 'create' && !grantedBy(grants, grant, 'read', trace, action)) return false;
  return grantedBy(grants, grant, action, trace);
}

/** Agent scope and permission sets for one action; `forAction` names the action that needs read. */
function grantedBy(
  grants: PrincipalGrants,
  grant: ObjectGrant,
  action: ObjectAction,
  trace?: ExplainTrace,
  forAction?: ObjectAction,
): boolean {
  const because = forAction ? ` (${forAction} needs read)` : '';
  const agent = grants.snapshot.agent;
  if (agent) {
    const scope = action === 'read' ? 'data:read' : 'data:write';
    if (!agent.scopes.includes(scope)) return trace ? trace.deny('agent_scope', agent.name, `missing scope ${scope}${because}`) : false;
    trace?.step({ layer: 'agent_scope', outcome: 'pass', source: agent.name, detail: scope });
  }
  // Managing shares needs read, which the caller has just checked.
  if (action === 'share') {
    trace?.decide('object_permission', grant.sources.read[0]);
    return true;
  }
  const sources = grant.sources[GRANT_FOR_ACTION[action]];
  if (sources.length === 0)
    return trace ? trace.deny('object_permission', undefined, `no permission set allows ${action}${because}`) : false;
  if (trace) {
    trace.step({
      layer: 'object_permission',
      outcome: 'allow',
      source: sources.join(', '),
      ...(forAction ? { detail: `read, needed by ${forAction}` } : {}),
    });
    if (!forAction) trace.decide('object_permission', sources[0]);
  }
  return true;
}
