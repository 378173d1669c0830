import type { RecordRow } from '../objectql/where.evaluator';
import { levelName, type AccessLevel, type LevelRank, type ObjectAction } from './access-level';
import type { AccessContribution, ExplainLayer } from './record-access.evaluator';
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
  /** On a detail record controlled by its master: the master record (`object:id`) the step was found on. */
  readonly record?: string;
}

export interface Explanation {
  readonly allowed: boolean;
  /** The layer that decided: the first deny, or the grant that met the requirement. */
  readonly decidedBy: ExplainLayer;
  readonly source?: string;
  /** Steps in the order they were consulted. */
  readonly steps: readonly ExplainStep[];
  readonly level?: AccessLevel;
  readonly required?: AccessLevel;
}

/**
 * What one evaluation consulted, filled in by the evaluation itself (Decision.explain passes it to
 * the same code that canRecord runs without one). It never decides: the verdict is the
 * evaluation's return value; the trace only says which layer and source produced it.
 */
export class ExplainTrace {
  readonly steps: ExplainStep[] = [];
  /** Record-access contributions, in order (see recordLevelOf). */
  readonly contributions: AccessContribution[] = [];
  private decidedBy: ExplainLayer = 'object_permission';
  private source: string | undefined;
  private level: LevelRank | undefined;
  private required: LevelRank | undefined;

  step(step: ExplainStep): void {
    this.steps.push(step);
  }

  /** A refusal by `layer`: recorded as the last step. Returns false so checks can `return trace.deny(…)`. */
  deny(layer: ExplainLayer, source?: string, detail?: string): false {
    this.steps.push({ layer, outcome: 'deny', ...(source !== undefined ? { source } : {}), ...(detail !== undefined ? { detail } : {}) });
    this.decidedBy = layer;
    this.source = source;
    return false;
  }

  /** The layer that allowed, unless a later one decides. */
  decide(layer: ExplainLayer, source: string | undefined): void {
    this.decidedBy = layer;
    this.source = source;
  }

  /**
   * The record-access part: `allowed` is the evaluation's verdict; `exact` the true level. The
   * contributions become steps; on allow the decider is the last contribution made on the record
   * itself (the evaluation stops at the one that met the requirement).
   */
  recordAccess(allowed: boolean, need: LevelRank, exact: LevelRank): void {
    let decider: AccessContribution | undefined;
    for (const c of this.contributions) {
      this.steps.push({
        layer: c.layer,
        outcome: c.level > 0 ? 'grant' : 'pass',
        source: c.source,
        level: levelName(c.level),
        ...(c.record !== undefined ? { record: c.record } : {}),
      });
      if (c.record === undefined) decider = c;
    }
    this.level = exact;
    this.required = need;
    if (allowed && decider) {
      this.decide(decider.layer, decider.source);
    } else if (!allowed) {
      this.steps.push({
        layer: 'record_access',
        outcome: 'deny',
        level: levelName(exact),
        detail: `access ${levelName(exact)} < required ${levelName(need)}`,
      });
      this.decide('record_access', undefined);
    }
  }

  explanation(allowed: boolean): Explanation {
    return {
      allowed,
      decidedBy: this.decidedBy,
      ...(this.source !== undefined ? { source: this.source } : {}),
      steps: this.steps,
      ...(this.level !== undefined ? { level: levelName(this.level), required: levelName(this.required!) } : {}),
    };
  }
}
