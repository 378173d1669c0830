import { BlockList, isIP } from 'node:net';
import type { IncomingHttpHeaders } from 'node:http';

/** Which header the trusted proxies write the client chain into. */
export type ForwardedHeader = 'x-forwarded-for' | 'forwarded';

/** `loopback` stands for these; anything else in the list is an address or a CIDR. */
const LOOPBACK = ['127.0.0.0/8', '::1/128'];

export interface ParsedProxyList {
  /** Normalised entries (`address/prefix`), for logs and docs. */
  readonly cidrs: readonly string[];
  readonly problems: readonly string[];
}

/**
 * Parses `CUSTODIAN_TRUSTED_PROXIES`: a comma list of IPv4/IPv6 addresses, CIDRs and the word
 * `loopback`; empty trusts no proxy. Every entry that is not one of these is a problem (the
 * start is refused: a typo must not silently trust nobody, or everybody).
 */
export function parseProxyList(raw: string, name = 'CUSTODIAN_TRUSTED_PROXIES'): ParsedProxyList {
  const cidrs: string[] = [];
  const problems: string[] = [];
  for (const entry of raw
    .split(',')
    .map((e) => e.trim())
    .filter(Boolean)) {
    if (entry.toLowerCase() === 'loopback') {
      cidrs.push(...LOOPBACK);
      continue;
    }
    const cidr = parseCidr(entry);
    if (cidr) cidrs.push(`${cidr.address}/${cidr.prefix}`);
    else problems.push(`${name}: "${entry.slice(0, 64)}" is not an IP address, a CIDR (e.g. 10.0.0.0/8, fd00::/8) or "loopback"`);
  }
  return { cidrs: [...new Set(cidrs)], problems };
}

function parseCidr(entry: string): { address: string; prefix: number; family: 4 | 6 } | undefined {
  const slash = entry.indexOf('/');
  const address = normalizeAddress(slash === -1 ? entry : entry.slice(0, slash));
  const family = isIP(address);
  if (family !== 4 && family !== 6) return undefined;
  const max = family === 4 ? 32 : 128;
  let prefix = max;
  if (slash !== -1) {
    const text = entry.slice(slash + 1);
    if (!/^\d{1,3}$/.test(text)) return undefined;
    prefix = Number(text);
    if (prefix > max) return undefined;
  }
  return { address, prefix, family };
}

/** `::ffff:10.0.0.1` (an IPv4 peer of a dual-stack socket) is 10.0.0.1; IPv6 zone ids are dropped. */
export function normalizeAddress(address: string): string {
  const a = address.trim();
  if (/^::ffff:\d{1,3}(\.\d{1,3}){3}$/i.test(a)) return a.slice(7);
  const zone = a.indexOf('%');
  return zone === -1 ? a : a.slice(0, zone);
}

/** Distinct addresses whose verdict is remembered; past this the memory starts over. */
const MAX_REMEMBERED_VERDICTS = 4096;

/**
 * Resolves the client address of a request: the peer of the socket, unless that peer is a
 * trusted proxy — then the hop it reports, walked from right to left (each proxy appends the hop
 * it saw) through trusted hops only. The first untrusted hop is the client: whatever a client
 * writes into the header itself lies to the left of it and is never read. Only the configured
 * header is read; the other one may carry anything a client sent and is ignored.
 */
export class ClientAddressResolver {
  private readonly trusted = new BlockList();
  private readonly empty: boolean;
  private readonly verdicts = new Map<string, boolean>();

  constructor(
    cidrs: readonly string[],
    private readonly header: ForwardedHeader = 'x-forwarded-for',
  ) {
    for (const c of cidrs) {
      const parsed = parseCidr(c);
      if (!parsed) throw new Error(`not a CIDR: ${c}`);
      this.trusted.addSubnet(parsed.address, parsed.prefix, parsed.family === 4 ? 'ipv4' : 'ipv6');
    }
    this.empty = cidrs.length === 0;
  }

  /** True when the address is one of the trusted proxies. */
  trusts(address: string): boolean {
    if (this.empty) return false;
    // BlockList.check builds a native SocketAddress per call (µs); a request's peer is almost
    // always one of a few addresses, so answers are remembered (the list never changes).
    const known = this.verdicts.get(address);
    if (known !== undefined) return known;
    const a = normalizeAddress(address);
    const family = isIP(a);
    // Only addresses are remembered: a hop of X-Forwarded-For is the client's text, and an
    // arbitrary (up to header-sized) string must not take a place in the memory.
    if (family === 0) return false;
    const verdict = this.trusted.check(a, family === 4 ? 'ipv4' : 'ipv6');
    if (this.verdicts.size >= MAX_REMEMBERED_VERDICTS) this.verdicts.clear();
    this.verdicts.set(address, verdict);
    return verdict;
  }

  /** The client address for a peer and the request's headers (undefined only without a peer). */
  resolve(peer: string | undefined, headers: IncomingHttpHeaders): string | undefined {
    if (peer === undefined) return undefined;
    let client = normalizeAddress(peer);
    if (!this.trusts(client)) return client;
    const hops = this.header === 'forwarded' ? forwardedFor(headers.forwarded) : xForwardedFor(headers['x-forwarded-for']);
    for (let i = hops.length - 1; i >= 0; i--) {
      const hop = hops[i];
      // An unreadable hop (`unknown`, an obfuscated name, garbage) ends the walk at the last proxy
      // that could be read: the address is coarser, never chosen by the client.
      if (hop === undefined) return client;
      client = hop;
      if (!this.trusts(client)) return client;
    }
    return client;
  }
}

/** `X-Forwarded-For: client, proxy1, proxy2` (several headers are joined by Node with ", "). */
function xForwardedFor(value: string | string[] | undefined): Array<string | undefined> {
  if (value === undefined) return [];
  const text = Array.isArray(value) ? value.join(',') : value;
  return text.split(',').map((part) => addressOf(part.trim()));
}

/** RFC 7239 `Forwarded: for=192.0.2.43;proto=https, for="[2001:db8::17]:4711"`: the `for` of each element. */
function forwardedFor(value: string | string[] | undefined): Array<string | undefined> {
  if (value === undefined) return [];
  const text = Array.isArray(value) ? value.join(',') : value;
  return splitOutsideQuotes(text, ',').map((element) => {
    const pair = splitOutsideQuotes(element, ';')
      .map((p) => p.trim())
      .find((p) => p.slice(0, 4).toLowerCase() === 'for=');
    if (pair === undefined) return undefined;
    let v = pair.slice(4).trim();
    if (v.startsWith('"') && v.endsWith('"') && v.length >= 2) v = v.slice(1, -1);
    return addressOf(v);
  });
}

/** An address from `1.2.3.4`, `1.2.3.4:80`, `[::1]`, `[::1]:80` or `::1`; undefined for anything else. */
function addressOf(raw: string): string | undefined {
  let v = raw;
  if (v.startsWith('[')) {
    const end = v.indexOf(']');
    if (end === -1) return undefined;
    v = v.slice(1, end);
  } else if (/^\d{1,3}(\.\d{1,3}){3}:\d{1,5}$/.test(v)) {
    v = v.slice(0, v.lastIndexOf(':'));
  }
  const a = normalizeAddress(v);
  return isIP(a) === 0 ? undefined : a;
}

function splitOutsideQuotes(text: string, separator: string): string[] {
  const parts: string[] = [];
  let quoted = false;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"' && text[i - 1] !== '\\') quoted = !quoted;
    else if (c === separator && !quoted) {
      parts.push(text.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(text.slice(start));
  return parts;
}
