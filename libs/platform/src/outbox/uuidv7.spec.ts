import { uuidv7 } from './uuidv7';

const SHAPE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

describe('uuidv7', () => {
  it('has the UUID shape, version nibble 7 and variant bits 10xx', () => {
    for (let i = 0; i < 1000; i++) {
      const id = uuidv7();
      expect(id).toMatch(SHAPE);
      expect(id[14]).toBe('7');
      expect(['8', '9', 'a', 'b']).toContain(id[19]);
    }
  });

  it('carries the millisecond timestamp in the first 48 bits', () => {
    const now = Date.UTC(2030, 0, 1, 12, 0, 0, 123);
    const id = uuidv7(now);
    expect(parseInt(id.replace(/-/g, '').slice(0, 12), 16)).toBe(now);
  });

  it('sorts lexicographically in time order', () => {
    const start = Date.UTC(2024, 0, 1);
    const times = [0, 1, 2, 255, 256, 4095, 65_536, 1_000_000, 86_400_000, 10 * 365 * 86_400_000].map((d) => start + d);
    const ids = times.map((t) => uuidv7(t));
    expect([...ids].sort()).toEqual(ids);

    const later = Array.from({ length: 1000 }, (_, i) => uuidv7(start + i));
    expect([...later].reverse().sort()).toEqual(later);
  });

  it('is unique over 10,000 ids generated in the same millisecond', () => {
    const now = Date.now();
    const ids = new Set(Array.from({ length: 10_000 }, () => uuidv7(now)));
    expect(ids.size).toBe(10_000);
  });
});
