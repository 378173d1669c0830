import { readCheckpointFile } from './checkpoint-file';

const a = { chainId: 'c1', seq: 3, headHash: 'h', signature: 's', publicKey: 'K1' };
const b = { chainId: 'c2', seq: 5, headHash: 'h', signature: 's', publicKey: 'K2' };

/** `audit verify --offline --checkpoint F` reads what GET audit/checkpoints answered, then and now (ADR 0018). */
describe('the checkpoint file of audit verify', () => {
  it('reads the list envelope {items, nextCursor, publicKeys} of GET audit/checkpoints', () => {
    expect(readCheckpointFile({ items: [a, b], nextCursor: null, publicKeys: ['P'] })).toEqual({ checkpoints: [a, b], publicKeys: ['P'] });
  });

  it('still reads the body before ADR 0018, {publicKeys, checkpoints}', () => {
    expect(readCheckpointFile({ publicKeys: ['P'], checkpoints: [a] })).toEqual({ checkpoints: [a], publicKeys: ['P'] });
  });

  it('reads one checkpoint object as a list of one', () => {
    expect(readCheckpointFile(a)).toEqual({ checkpoints: [a], publicKeys: undefined });
  });

  it('without publicKeys in the file, leaves the trusted keys to the caller (pin them with --public-key)', () => {
    expect(readCheckpointFile({ items: [a], nextCursor: null }).publicKeys).toBeUndefined();
    expect(readCheckpointFile({ items: [a], publicKeys: 'P' }).publicKeys).toBeUndefined();
    expect(readCheckpointFile({ items: [a], publicKeys: ['P', 1] }).publicKeys).toBeUndefined();
  });

  it.each<[string, unknown]>([
    ['both lists', { items: [a], checkpoints: [b] }],
    ['items that are not a list', { items: { 0: a } }],
    ['checkpoints that are not a list', { checkpoints: 'a' }],
    ['a list', [a]],
    ['null', null],
    ['a string', 'checkpoint'],
  ])('refuses a file with %s', (_what, doc) => {
    expect(() => readCheckpointFile(doc)).toThrow(/checkpoint file/);
  });
});
