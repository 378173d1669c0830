import { Inject, Injectable } from '@nestjs/common';
import { DescribeObjects, type DescribedObject, type PrincipalSnapshot } from '@custodian/contracts';
import { BUS, CONFIG, type Bus, type CustodianConfig } from '@custodian/platform';
import { credentialKey } from './credential-key';
import { visibleTools, type ToolDefinition } from './tool-catalog';

/** A cached answer is reused at most this long (object metadata can change without a policy version). */
const CACHE_MS = 10_000;
const MAX_ENTRIES = 5000;

interface Entry {
  objects: DescribedObject[];
  tools: ToolDefinition[];
  byName: Map<string, ToolDefinition>;
  at: number;
}

/**
 * The tools of a principal, computed from objects' governed describe (the same Decision as REST) and
 * cached per credential and policy version for a few seconds, so tools/list and every tool call's
 * "may this principal call it" cost a map lookup.
 */
@Injectable()
export class ToolCatalogService {
  private readonly cache = new Map<string, Entry>();
  private readonly inflight = new Map<string, Promise<Entry>>();

  constructor(
    @Inject(BUS) private readonly bus: Bus,
    @Inject(CONFIG) private readonly config: CustodianConfig,
  ) {}

  async toolsFor(principal: PrincipalSnapshot): Promise<ToolDefinition[]> {
    return (await this.entry(principal)).tools;
  }

  /** The tool if this principal may call it; undefined for unknown and not-allowed alike. */
  async find(principal: PrincipalSnapshot, name: string): Promise<ToolDefinition | undefined> {
    return (await this.entry(principal)).byName.get(name);
  }

  async objects(principal: PrincipalSnapshot): Promise<DescribedObject[]> {
    return (await this.entry(principal)).objects;
  }

  private async entry(principal: PrincipalSnapshot): Promise<Entry> {
    const key = `${credentialKey(principal)}:${principal.policyVersion}:${(principal.agent?.scopes ?? []).join(',')}:${(principal.apiKeyScopes ?? []).join(',')}`;
    const hit = this.cache.get(key);
    if (hit && Date.now() - hit.at < CACHE_MS) return hit;
    let pending = this.inflight.get(key);
    if (!pending) {
      pending = (async () => {
        const { objects } = await this.bus.request(DescribeObjects, { principal });
        const tools = visibleTools(
          principal,
          objects,
          { maxRows: this.config.agentGateway.maxRows },
          await this.actionObjects(principal, objects),
        );
        const entry: Entry = { objects, tools, byName: new Map(tools.map((t) => [t.name, t])), at: Date.now() };
        this.cache.delete(key);
        this.cache.set(key, entry);
        if (this.cache.size > MAX_ENTRIES) this.cache.delete(this.cache.keys().next().value as string);
        return entry;
      })().finally(() => this.inflight.delete(key));
      this.inflight.set(key, pending);
    }
    return pending;
  }

  /**
   * Objects runs a declared action for an agent with actions:execute as if it held data:write for that
   * one update, so the objects it may run actions on are those it could edit with data:write added.
   */
  private async actionObjects(principal: PrincipalSnapshot, objects: DescribedObject[]): Promise<DescribedObject[]> {
    const agent = principal.agent;
    if (!agent || !agent.scopes.includes('actions:execute') || agent.scopes.includes('data:write')) return objects;
    const widened: PrincipalSnapshot = { ...principal, agent: { ...agent, scopes: [...agent.scopes, 'data:write'] } };
    return (await this.bus.request(DescribeObjects, { principal: widened })).objects;
  }
}
