import { seedTeampass } from './seed.js';

/** Fixed ids and tokens of the TeamPass-shaped fixture shared by the gateway suites. */
export const FIX = {
  users: { alice: 1, bob: 2, admin: 3, disabled: 4, carol: 5, dave: 6 },
  tokens: {
    alice: 'a'.repeat(63) + '1',
    bob: 'b'.repeat(63) + '2',
    admin: 'c'.repeat(63) + '3',
    disabled: 'd'.repeat(63) + '4',
    expired: 'e'.repeat(63) + '5',
    carol: 'a'.repeat(63) + '6',
    dave: 'a'.repeat(63) + '7',
  },
} as const;

export interface Fixture {
  items: { lockedByBob: number; staleLock: number };
  kb: { lockedByBob: number };
}

/**
 * Seed, with plain SQL as TeamPass's PHP writes it:
 * - alice: folders 10, 11 directly and 12 through role 1; bob: folder 10; admin: admin;
 * - carol has no name (display name falls back to the login); dave is a spare user;
 * - a disabled user with a valid token, and an expired token of alice;
 * - `enable_kb = 1`; bob holds a fresh lock on item 100 (folder 10) and on KB
 *   article 7, and a stale lock on item 101.
 */
export async function seedFixture(url: string, prefix: string): Promise<Fixture> {
  const U = FIX.users;
  const T = FIX.tokens;
  await seedTeampass(url, prefix, {
    users: [
      { id: U.alice, login: 'alice', name: 'Alice ', lastname: ' Martin' },
      { id: U.bob, login: 'bob', name: 'Bob' },
      { id: U.admin, login: 'admin', name: 'Ad', lastname: 'Min', admin: true },
      { id: U.disabled, login: 'mallory', name: 'Mal', lastname: 'Lory', disabled: true },
      { id: U.carol, login: 'carol', name: '', lastname: '' },
      { id: U.dave, login: 'dave', name: 'Dave', lastname: 'D' },
    ],
    misc: { enable_kb: '1' },
    groups: { [U.alice]: [10, 11], [U.bob]: [10] },
    roles: { [U.alice]: [{ roleId: 1, folderIds: [12] }] },
    tokens: [
      ...([[U.alice, T.alice], [U.bob, T.bob], [U.admin, T.admin], [U.disabled, T.disabled], [U.carol, T.carol], [U.dave, T.dave]] as const)
        .map(([userId, token]) => ({ userId, token, ttlSec: 3600 })),
      { userId: U.alice, token: T.expired, ttlSec: -10 },
    ],
    itemLocks: [
      { itemId: 100, folderId: 10, userId: U.bob },
      { itemId: 101, folderId: 10, userId: U.bob, ageSec: 3600 },
    ],
    kbLocks: [{ kbId: 7, userId: U.bob }],
  });
  return { items: { lockedByBob: 100, staleLock: 101 }, kb: { lockedByBob: 7 } };
}
