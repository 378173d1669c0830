// Public surface of @custodian/policy — the only place that decides (docs/policy.md).
export { PolicyError, POLICY_ERROR_STATUS, isPolicyError, type PolicyErrorCode } from './errors/policy.error';

export {
  PrincipalSnapshotSchema,
  PermissionSetSchema,
  ObjectPermissionSchema,
  AgentContextSchema,
  FieldLevelSchema,
  SYSTEM_CAPABILITIES,
  INTEGRATION_CAPABILITIES,
  AGENT_SCOPES,
  type PrincipalSnapshot,
  type PermissionSet,
  type ObjectPermission,
  type AgentContext,
  type FieldLevel,
  type Capability,
  type SystemCapability,
  type IntegrationCapability,
  type AgentScope,
} from './model/principal-snapshot.schema';
export {
  ObjectSecuritySchema,
  FieldSecuritySchema,
  SharingRuleSchema,
  RecordShareSchema,
  FIELD_TYPES,
  type ObjectSecurity,
  type FieldSecurity,
  type FieldType,
  type SharingModel,
  type SharingRule,
  type CriteriaSharingRule,
  type OwnerSharingRule,
  type Grantee,
  type ShareGranteeType,
  type ShareLevel,
  type RecordShare,
} from './model/object-security.schema';
export { parsePrincipalSnapshot, parseObjectSecurity, parseRecordShare, POLICY_JSON_SCHEMAS } from './model/model.validator';
export { assertNoForbiddenKeys, FORBIDDEN_KEYS, isSafeName } from './model/safe-input';

export {
  DEFAULT_WHERE_LIMITS,
  SYSTEM_FIELDS,
  isSystemField,
  type WhereLimits,
  type WhereNode,
  type WhereFieldResolver,
} from './objectql/where.ast';
export { parseWhere } from './objectql/where.parser';
export { evaluateWhere, compareCodePoints, type RecordRow } from './objectql/where.evaluator';
export { compileWhereSql, type WhereSqlContext } from './objectql/where.sql-compiler';

export { SqlParams, quoteIdent, qualifiedName, type SqlFragment } from './sql/sql-params';
export { ALWAYS, NEVER, NEVER_FILTER, anyOf, conditional, sqlOfPlan, type SqlFilter, type SqlPlan } from './sql/sql-plan';
export { createSqlSchema, DEFAULT_SQL_SCHEMA, type PolicySqlSchema, type PolicySqlSchemaOptions } from './sql/sql-schema.config';

export {
  ACCESS_LEVELS,
  OBJECT_ACTIONS,
  isObjectAction,
  type AccessLevel,
  type ObjectAction,
  type RecordAction,
} from './decision/access-level';
export { compileCatalog, type PolicyCatalog, type CompiledObject } from './decision/policy-catalog';
export { InMemoryAccessFacts, type RecordAccessFacts, type DirectoryData } from './decision/record-access.facts';
export { Decision, agentKeepsCapability, type SqlOptions } from './decision/decision';
export { compileDecision, type CompileOptions } from './decision/decision.compiler';
export { DecisionCache, type DecisionCacheOptions, type DecisionCacheStats } from './decision/decision.cache';
export type { Explanation, ExplainRequest, ExplainStep, StepOutcome } from './decision/explain';
export { MAX_PARENT_DEPTH, type ExplainLayer } from './decision/record-access.evaluator';
export { VIEW_ALL_DATA_SET, MODIFY_ALL_DATA_SET } from './decision/principal-grants';
