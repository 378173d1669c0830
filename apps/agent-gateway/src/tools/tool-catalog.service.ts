import { createHash } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import { DescribeObjects, type DescribedObject, type PrincipalSnapshot } from '@custodian/contracts';
import { BUS, CONFIG, type Bus, type CustodianConfig } from '@custodian/platform';
import { listedTool, visibleTools, type ToolDefinition } from './tool-catalog';

/** A cached answer is reused at most this long (object metadata can change without a policy version). */
const CACHE_MS = 10_000;
/** An entry used after this age is recomputed in the background, so steady traffic never waits for it. */
const REFRESH_AFTER_MS = CACHE_MS / 2;
/** Entries kept (least recently used dropped first); a wide principal's entry holds its tools' schemas. */
const MAX_ENTRIES = 256;

/** What `tools/list` answers for one principal: the tools as listed, and the same JSON serialized once. */
export interface ToolList {
  readonly result: { tools: Array<Record<string, unknown>> };
  readonly json: string;
  /** `json` as UTF-8 bytes: what /mcp writes to the socket, without a copy per request. */
  readonly bytes: Buffer;
  /** Changes exactly when the listed tools change (a session compares it to tell list_changed). */
  readonly fingerprint: string;
}

interface Entry {
  objects: DescribedObject[];
  /** The tools with their full input schemas: what a call is validated against, and what the in-process runtime offers. */
  tools: ToolDefinition[];
  byName: Map<string, ToolDefinition>;
  list: ToolList;
  /** Changes exactly when the object catalog (resources/list) changes. */
  objectsFingerprint: string;
  at: number;
}

const digest = (text: string): string => createHash('sha256').update(text).digest('base64url').slice(0, 22);

/**
 * The tools of a principal, computed from objects' governed describe (the same Decision as REST) and
 * cached for a few seconds per **principal content** — org, policy version, permission sets,
 * capabilities, agent scopes, API key scopes: everything the tools are computed from — in a bounded
 * LRU, so every credential of a user (and users with identical grants) share one entry, and
 * tools/list and every tool call's "may this principal call it" cost a map lookup. The tools/list
 * answer is serialized once per entry.
 */
@Injectable()
export class ToolCatalogService {
  private readonly cache = new Map<string, Entry>();
  private readonly inflight = new Map<string, Promise<Entry>>();
  /** The resolver hands out the same snapshot object while it caches it: its key is computed once. */
  private readonly keys = new WeakMap<PrincipalSnapshot, string>();

  constructor(
    @Inject(BUS) private readonly bus: Bus,
    @Inject(CONFIG) private readonly config: CustodianConfig,
  ) {}

  async toolsFor(principal: PrincipalSnapshot): Promise<ToolDefinition[]> {
    return (await this.entry(principal)).tools;
  }

  /** The tools/list answer of this principal (schemas as listed: see `listedTool`). */
  async listFor(principal: PrincipalSnapshot): Promise<ToolList> {
    return (await this.entry(principal)).list;
  }

  /** The tool if this principal may call it; undefined for unknown and not-allowed alike. */
  async find(principal: PrincipalSnapshot, name: string): Promise<ToolDefinition | undefined> {
    return (await this.entry(principal)).byName.get(name);
  }

  async objects(principal: PrincipalSnapshot): Promise<DescribedObject[]> {
    return (await this.entry(principal)).objects;
  }

  /** What a session compares to tell whether this principal's tools or resources changed. */
  async fingerprints(principal: PrincipalSnapshot): Promise<{ tools: string; objects: string }> {
    const entry = await this.entry(principal);
    return { tools: entry.list.fingerprint, objects: entry.objectsFingerprint };
  }

  /** The cache key: the principal's content that tools depend on, never the credential. */
  keyOf(principal: PrincipalSnapshot): string {
    let key = this.keys.get(principal);
    if (key === undefined) {
      const { clientId: _client, name: _name, ...agent } = principal.agent ?? { clientId: '', name: '' };
      const content = JSON.stringify([
        principal.permissionSets,
        principal.capabilities,
        principal.agent ? agent : null,
        principal.apiKeyScopes ?? null,
      ]);
      key = `${principal.orgId}:${principal.policyVersion}:${digest(content)}`;
      this.keys.set(principal, key);
    }
    return key;
  }

  /**
   * The tools/list answer when this principal's entry is cached and fresh — what `listFor` answers,
   * without a promise (the usual case on a busy session) — or undefined: then call `listFor`.
   */
  cachedList(principal: PrincipalSnapshot): ToolList | undefined {
    return this.fresh(this.keyOf(principal), principal)?.list;
  }

  private async entry(principal: PrincipalSnapshot): Promise<Entry> {
    const key = this.keyOf(principal);
    return this.fresh(key, principal) ?? this.inflight.get(key) ?? this.load(key, principal);
  }

  /** The cached entry if it is fresh enough to use (refreshed in the background once it ages). */
  private fresh(key: string, principal: PrincipalSnapshot): Entry | undefined {
    const hit = this.cache.get(key);
    if (!hit) return undefined;
    const age = Date.now() - hit.at;
    if (age >= CACHE_MS) return undefined;
    // Most recently used last, so the least recently used is dropped first.
    this.cache.delete(key);
    this.cache.set(key, hit);
    if (age >= REFRESH_AFTER_MS && !this.inflight.has(key)) void this.load(key, principal).catch(() => undefined);
    return hit;
  }

  private load(key: string, principal: PrincipalSnapshot): Promise<Entry> {
    const pending = (async () => {
      const { objects } = await this.bus.request(DescribeObjects, { principal });
      const tools = visibleTools(
        principal,
        objects,
        { maxRows: this.config.agentGateway.maxRows },
        await this.actionObjects(principal, objects),
      );
      const listed = tools.map((t) => listedTool(t));
      const result = { tools: listed as unknown as Array<Record<string, unknown>> };
      const json = JSON.stringify(result);
      const entry: Entry = {
        objects,
        tools,
        byName: new Map(tools.map((t) => [t.name, t])),
        list: { result, json, bytes: Buffer.from(json, 'utf8'), fingerprint: digest(json) },
        objectsFingerprint: digest(JSON.stringify(objects.map((o) => [o.name, o.label ?? null, o.description ?? null]))),
        at: Date.now(),
      };
      this.cache.delete(key);
      this.cache.set(key, entry);
      if (this.cache.size > MAX_ENTRIES) this.cache.delete(this.cache.keys().next().value as string);
      return entry;
    })().finally(() => this.inflight.delete(key));
    this.inflight.set(key, pending);
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
