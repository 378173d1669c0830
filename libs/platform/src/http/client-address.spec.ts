import { ConfigError, loadConfig } from '../config/config';
import { ClientAddressResolver, normalizeAddress, parseProxyList } from './client-address';

// Trusted proxies: the client address comes from the forwarding header only through configured hops.

describe('parseProxyList', () => {
  it('reads addresses, CIDRs (IPv4 and IPv6) and "loopback"', () => {
    const parsed = parseProxyList(' 10.0.0.0/8, 192.168.1.7 ,fd00::/8, loopback,2001:db8::1');
    expect(parsed.problems).toEqual([]);
    expect(parsed.cidrs).toEqual(['10.0.0.0/8', '192.168.1.7/32', 'fd00::/8', '127.0.0.0/8', '::1/128', '2001:db8::1/128']);
    expect(parseProxyList('').cidrs).toEqual([]);
  });

  it.each(['10.0.0.0/33', 'fd00::/129', '10.0.0/8', 'proxy.internal', '10.0.0.0/', '10.0.0.0/8/8', '*', '0x7f000001', '10.0.0.0/-1'])(
    'refuses %p',
    (entry) => {
      const parsed = parseProxyList(`loopback,${entry}`);
      expect(parsed.problems).toHaveLength(1);
      expect(parsed.problems[0]).toMatch(/^CUSTODIAN_TRUSTED_PROXIES: ".*" is not an IP address, a CIDR/);
    },
  );

  it('a bad entry refuses the start with a config error naming the variable', () => {
    let error: unknown;
    try {
      loadConfig({ CUSTODIAN_TRUSTED_PROXIES: '10.0.0.0/8,10.1.2.300/32', CUSTODIAN_RATE_LIMIT_EXEMPT: 'nope' }, 'all-in-one');
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).problems).toEqual([
      'CUSTODIAN_TRUSTED_PROXIES: "10.1.2.300/32" is not an IP address, a CIDR (e.g. 10.0.0.0/8, fd00::/8) or "loopback"',
      'CUSTODIAN_RATE_LIMIT_EXEMPT: "nope" is not an IP address, a CIDR (e.g. 10.0.0.0/8, fd00::/8) or "loopback"',
    ]);
    expect(() => loadConfig({ CUSTODIAN_FORWARDED_HEADER: 'x-real-ip' }, 'all-in-one')).toThrow(/CUSTODIAN_FORWARDED_HEADER/);
  });

  it('defaults to loopback only, reading X-Forwarded-For', () => {
    const config = loadConfig({}, 'all-in-one');
    expect(config.http.trustedProxies).toEqual(['127.0.0.0/8', '::1/128']);
    expect(config.http.forwardedHeader).toBe('x-forwarded-for');
  });
});

describe('ClientAddressResolver', () => {
  const xff = (value: string): Record<string, string> => ({ 'x-forwarded-for': value });

  it('ignores a spoofed X-Forwarded-For from an untrusted peer', () => {
    const r = new ClientAddressResolver(parseProxyList('loopback').cidrs);
    expect(r.resolve('203.0.113.9', xff('10.9.9.9'))).toBe('203.0.113.9');
    expect(r.resolve('::ffff:203.0.113.9', xff('127.0.0.1'))).toBe('203.0.113.9');
  });

  it('honours the header through a trusted hop: the rightmost untrusted address is the client', () => {
    const r = new ClientAddressResolver(parseProxyList('10.0.0.0/8').cidrs);
    expect(r.resolve('10.0.0.5', xff('198.51.100.7'))).toBe('198.51.100.7');
    // The client wrote "1.1.1.1" itself; the ingress appended the address it saw.
    expect(r.resolve('10.0.0.5', xff('1.1.1.1, 198.51.100.7'))).toBe('198.51.100.7');
    // Two trusted hops (ingress, then a sidecar) in front of the client.
    expect(r.resolve('10.0.0.5', xff('1.1.1.1, 198.51.100.7, 10.2.3.4'))).toBe('198.51.100.7');
    // Several X-Forwarded-For headers arrive joined.
    expect(r.resolve('10.0.0.5', { 'x-forwarded-for': ['1.1.1.1', '198.51.100.7'] } as never)).toBe('198.51.100.7');
    // Only trusted hops all the way: the leftmost is the best we know.
    expect(r.resolve('10.0.0.5', xff('10.3.3.3'))).toBe('10.3.3.3');
    // No header: the proxy itself.
    expect(r.resolve('10.0.0.5', {})).toBe('10.0.0.5');
  });

  it('stops at a hop it cannot read instead of skipping past it', () => {
    const r = new ClientAddressResolver(parseProxyList('10.0.0.0/8').cidrs);
    expect(r.resolve('10.0.0.5', xff('1.1.1.1, garbage'))).toBe('10.0.0.5');
    expect(r.resolve('10.0.0.5', xff('1.1.1.1, unknown, 10.0.0.6'))).toBe('10.0.0.6');
  });

  it('handles IPv6 peers, hops and CIDRs', () => {
    const r = new ClientAddressResolver(parseProxyList('fd00::/8').cidrs);
    expect(r.resolve('fd00::1', xff('2001:db8::7'))).toBe('2001:db8::7');
    expect(r.resolve('fd00::1', xff('2001:db8::9, [2001:db8::7]:4711'))).toBe('2001:db8::7');
    expect(r.resolve('fd00::1', xff('198.51.100.7:8080'))).toBe('198.51.100.7');
    expect(r.resolve('fe80::1%eth0', xff('2001:db8::7'))).toBe('fe80::1');
    expect(r.resolve('2001:db8::5', xff('2001:db8::7'))).toBe('2001:db8::5');
  });

  it('reads RFC 7239 Forwarded when configured, and then ignores X-Forwarded-For (and the reverse)', () => {
    const fwd = new ClientAddressResolver(parseProxyList('loopback').cidrs, 'forwarded');
    const headers = {
      forwarded: 'for=1.1.1.1, for="[2001:db8:cafe::17]:4711";proto=https;by=10.0.0.1',
      'x-forwarded-for': '9.9.9.9',
    };
    expect(fwd.resolve('127.0.0.1', headers)).toBe('2001:db8:cafe::17');
    expect(fwd.resolve('127.0.0.1', { forwarded: 'For=198.51.100.7;host="a;b,c"' })).toBe('198.51.100.7');
    expect(fwd.resolve('127.0.0.1', { forwarded: 'for=_hidden' })).toBe('127.0.0.1');
    expect(fwd.resolve('127.0.0.1', { 'x-forwarded-for': '9.9.9.9' })).toBe('127.0.0.1');
    const x = new ClientAddressResolver(parseProxyList('loopback').cidrs);
    expect(x.resolve('127.0.0.1', { forwarded: 'for=1.1.1.1' })).toBe('127.0.0.1');
  });

  it('trusts nobody with an empty list', () => {
    const r = new ClientAddressResolver([]);
    expect(r.resolve('127.0.0.1', xff('1.1.1.1'))).toBe('127.0.0.1');
    expect(r.trusts('127.0.0.1')).toBe(false);
  });

  it('normalises IPv4-mapped IPv6 and zone ids', () => {
    expect(normalizeAddress('::ffff:10.1.2.3')).toBe('10.1.2.3');
    expect(normalizeAddress('fe80::1%lo0')).toBe('fe80::1');
    expect(new ClientAddressResolver(['127.0.0.0/8']).trusts('::ffff:127.0.0.1')).toBe(true);
  });

  it('answers the same for an address asked again, also after thousands of others were asked (remembered verdicts)', () => {
    const r = new ClientAddressResolver(['10.0.0.0/8', 'fd00::/8']);
    const cases: Array<[string, boolean]> = [
      ['10.1.2.3', true],
      ['11.1.2.3', false],
      ['::ffff:10.9.9.9', true],
      ['fd00::7', true],
      ['fe80::1%eth0', false],
      ['not an address', false],
      ['', false],
    ];
    for (let round = 0; round < 3; round++) {
      for (const [address, trusted] of cases) expect([address, r.trusts(address)]).toEqual([address, trusted]);
      // More distinct addresses than are remembered: the memory starts over, the verdicts do not change.
      for (let i = 0; i < 5000; i++) expect(r.trusts(`10.${(i >> 8) & 255}.${i & 255}.${round}`)).toBe(true);
      for (let i = 0; i < 100; i++) expect(r.trusts(`192.0.2.${i}`)).toBe(false);
    }
    expect(r.resolve('10.0.0.1', xff('203.0.113.5, 10.0.0.2'))).toBe('203.0.113.5');
    expect(r.resolve('203.0.113.9', xff('10.0.0.2'))).toBe('203.0.113.9');
  });

  it('remembers verdicts of addresses only, never of the text a client writes into X-Forwarded-For', () => {
    const r = new ClientAddressResolver(['10.0.0.0/8']);
    const remembered = (): number => (r as unknown as { verdicts: Map<string, boolean> }).verdicts.size;
    for (let i = 0; i < 100; i++) expect(r.trusts(`${'x'.repeat(8000)}${i}`)).toBe(false);
    expect(remembered()).toBe(0);
    expect(r.resolve('10.0.0.1', xff(`203.0.113.5, ${'y'.repeat(8000)}`))).toBeDefined();
    expect(remembered()).toBeLessThanOrEqual(2);
    expect(r.trusts('10.1.1.1')).toBe(true);
    expect(remembered()).toBeGreaterThanOrEqual(1);
  });
});
