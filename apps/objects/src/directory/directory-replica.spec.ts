import { DirectoryReplicaService, type ReplicaState } from './directory-replica.service';

const state = (over: Partial<ReplicaState>): ReplicaState => ({
  appliedSeq: 0,
  directoryVersion: 0,
  announcedVersion: 0,
  directoryAnnouncedVersion: 0,
  ...over,
});

describe('DirectoryReplicaService.isFresh (R10)', () => {
  it.each([
    ['initial org version', state({}), 1, true],
    ['nothing known yet', state({}), 2, false],
    ['directory event at the version', state({ directoryVersion: 5 }), 5, true],
    ['newer directory event', state({ directoryVersion: 7 }), 5, true],
    [
      'only a permission-set bump announced, directory caught up',
      state({ directoryVersion: 4, announcedVersion: 5, directoryAnnouncedVersion: 4 }),
      5,
      true,
    ],
    [
      'a directory change announced but not applied yet',
      state({ directoryVersion: 4, announcedVersion: 5, directoryAnnouncedVersion: 5 }),
      5,
      false,
    ],
    ['announcement not arrived', state({ directoryVersion: 4, announcedVersion: 4, directoryAnnouncedVersion: 4 }), 5, false],
    [
      'a later directory change pending (conservative wait)',
      state({ directoryVersion: 4, announcedVersion: 7, directoryAnnouncedVersion: 7 }),
      5,
      false,
    ],
  ])('%s', (_name, s, version, expected) => {
    expect(DirectoryReplicaService.isFresh(s, version)).toBe(expected);
  });
});
