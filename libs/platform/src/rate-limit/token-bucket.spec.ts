import { addressKey } from './rate-limit.middleware';
import { TokenBucketLimiter } from './token-bucket';

describe('TokenBucketLimiter', () => {
  it('allows the burst, then refills at the rate', () => {
    let now = 0;
    const limiter = new TokenBucketLimiter({ perSecond: 2, burst: 3 }, 10, () => now);
    expect([1, 2, 3].map(() => limiter.take('a').allowed)).toEqual([true, true, true]);
    const refused = limiter.take('a');
    expect(refused).toMatchObject({ allowed: false, remaining: 0, retryAfterSeconds: 1 });
    now += 499;
    expect(limiter.take('a').allowed).toBe(false);
    now += 2;
    expect(limiter.take('a')).toMatchObject({ allowed: true, remaining: 0 });
    now += 60_000;
    expect(limiter.take('a')).toMatchObject({ allowed: true, remaining: 2, resetSeconds: 1 });
    // Another key has its own bucket.
    expect(limiter.take('b').remaining).toBe(2);
  });

  it('keeps at most maxBuckets, dropping the least recently used', () => {
    let now = 0;
    const limiter = new TokenBucketLimiter({ perSecond: 1, burst: 1 }, 3, () => now);
    for (const k of ['a', 'b', 'c']) limiter.take(k);
    limiter.take('a'); // a is now the most recent
    limiter.take('d'); // drops b
    expect(limiter.size).toBe(3);
    expect(limiter.take('a').allowed).toBe(false); // a kept its (empty) bucket
    expect(limiter.take('b').allowed).toBe(true); // b was forgotten: full again
    now += 1;
    for (let i = 0; i < 10_000; i++) limiter.take(`k${i}`);
    expect(limiter.size).toBe(3);
  });
});

describe('addressKey', () => {
  it('keys IPv4 by address and IPv6 by its /64', () => {
    expect(addressKey('198.51.100.7')).toBe('198.51.100.7');
    expect(addressKey('2001:db8:1:2:3:4:5:6')).toBe('2001:db8:1:2::/64');
    expect(addressKey('2001:db8:1:2::9')).toBe('2001:db8:1:2::/64');
    expect(addressKey('2001:0db8:0001:0002:ffff::1')).toBe('2001:db8:1:2::/64');
    expect(addressKey('::1')).toBe('0:0:0:0::/64');
    expect(addressKey('fd00::')).toBe('fd00:0:0:0::/64');
  });
});
