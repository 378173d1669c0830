import { hash } from 'node:crypto';
import { isIP } from 'node:net';
import { ErrorCode } from '@custodian/contracts';
import type { NextFunction, Request, Response } from 'express';
import type { CustodianConfig } from '../config/config';
import { requestContext } from '../context/request-context';
import { ClientAddressResolver } from '../http/client-address';
import { sendProblem } from '../http/problem-response';
import { TokenBucketLimiter, type BucketPolicy, type TakeResult } from './token-bucket';

type RateLimitConfig = CustodianConfig['rateLimit'];

/**
 * The general rate limiter, on every route but the probes: one token bucket per client address
 * (an IPv6 client by its /64, which one subscriber usually holds whole) and one per presented
 * credential (the bearer token or API key, keyed by a hash of it, so a guessed or forged
 * credential never drains a real one's bucket). A request takes a token from both; an empty
 * bucket answers 429 `rate_limited` with Retry-After. Every limited answer carries the IETF draft
 * `RateLimit-Policy` and `RateLimit` headers (draft-ietf-httpapi-ratelimit-headers).
 */
export class RateLimiter {
  private readonly address?: TokenBucketLimiter;
  private readonly credential?: TokenBucketLimiter;
  private readonly exempt: ClientAddressResolver;
  private readonly policyHeader: string;

  constructor(private readonly config: RateLimitConfig) {
    if (config.address.perSecond > 0) this.address = new TokenBucketLimiter(config.address, config.maxBuckets);
    if (config.credential.perSecond > 0) this.credential = new TokenBucketLimiter(config.credential, config.maxBuckets);
    this.exempt = new ClientAddressResolver(config.exempt);
    const policies: string[] = [];
    if (this.address) policies.push(policyItem('address', config.address));
    if (this.credential) policies.push(policyItem('credential', config.credential));
    this.policyHeader = policies.join(', ');
  }

  get active(): boolean {
    return this.config.enabled && (this.address !== undefined || this.credential !== undefined);
  }

  /** Bucket counts, for tests and metrics. */
  sizes(): { address: number; credential: number } {
    return { address: this.address?.size ?? 0, credential: this.credential?.size ?? 0 };
  }

  middleware() {
    return (req: Request, res: Response, next: NextFunction): void => {
      if (!this.active || req.path.startsWith('/health/') || req.path === '/metrics') return next();
      const ip = requestContext.current()?.ip;
      if (ip !== undefined && this.exempt.trusts(ip)) return next();
      let tightest: { name: string; result: TakeResult } | undefined;
      if (this.address && ip !== undefined) {
        const result = this.address.take(addressKey(ip));
        tightest = { name: 'address', result };
      }
      if (this.credential && (!tightest || tightest.result.allowed)) {
        const credential = credentialOf(req);
        if (credential !== undefined) {
          const result = this.credential.take(credential);
          if (!tightest || !result.allowed || result.remaining < tightest.result.remaining) tightest = { name: 'credential', result };
        }
      }
      if (!tightest) return next();
      const { name, result } = tightest;
      res.setHeader('RateLimit-Policy', this.policyHeader);
      res.setHeader('RateLimit', `"${name}";r=${result.remaining};t=${result.allowed ? result.resetSeconds : result.retryAfterSeconds}`);
      if (result.allowed) return next();
      res.setHeader('Retry-After', String(result.retryAfterSeconds));
      sendProblem(res, ErrorCode.RateLimited, 'Too many requests; retry after the time in Retry-After', {
        retryAfterSeconds: result.retryAfterSeconds,
        policy: name,
      });
    };
  }
}

/** `"address";q=1000;w=10`: the burst as quota, the time an empty bucket takes to refill as window. */
function policyItem(name: string, policy: BucketPolicy): string {
  return `"${name}";q=${policy.burst};w=${Math.max(1, Math.ceil(policy.burst / policy.perSecond))}`;
}

/** IPv4 as is; IPv6 by its /64 (a host picks any address inside its subnet freely). */
export function addressKey(ip: string): string {
  if (isIP(ip) !== 6) return ip;
  const [head, tail = ''] = ip.split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const groups = ip.includes('::') ? [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right] : left;
  return `${groups
    .slice(0, 4)
    .map((g) => (parseInt(g, 16) || 0).toString(16))
    .join(':')}::/64`;
}

/** A hash of the bearer token or API key the request presents (never the credential itself). */
function credentialOf(req: Request): string | undefined {
  const header = req.headers.authorization;
  if (typeof header !== 'string' || header.length < 8 || header.length > 8192) return undefined;
  const space = header.indexOf(' ');
  if (space === -1 || header.slice(0, space).toLowerCase() !== 'bearer') return undefined;
  // One-shot hash (no Hash object per request); 192 bits of SHA-256 cannot be matched on purpose.
  return hash('sha256', header.slice(space + 1).trim(), 'base64url').slice(0, 32);
}
