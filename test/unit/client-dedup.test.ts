import { describe, expect, it } from 'vitest';
import { RecentIds } from '../../src/client/recent-ids.js';

describe('RecentIds (dedup set)', () => {
  it('says whether an id is new', () => {
    const ids = new RecentIds(10);
    expect(ids.add('a')).toBe(true);
    expect(ids.add('a')).toBe(false);
    expect(ids.has('a')).toBe(true);
    expect(ids.has('b')).toBe(false);
  });

  it('keeps at most its capacity, forgetting the oldest first', () => {
    const ids = new RecentIds(3);
    for (const id of ['a', 'b', 'c', 'd']) ids.add(id);
    expect(ids.size).toBe(3);
    expect(ids.has('a')).toBe(false);
    expect(['b', 'c', 'd'].every((id) => ids.has(id))).toBe(true);
    // A duplicate does not refresh its age: 'b' is still the oldest.
    expect(ids.add('b')).toBe(false);
    ids.add('e');
    expect(ids.has('b')).toBe(false);
    expect(ids.has('c')).toBe(true);
  });

  it('holds 10,000 ids at the default size and no more', () => {
    const ids = new RecentIds(10_000);
    for (let i = 0; i < 10_500; i++) ids.add(`id-${i}`);
    expect(ids.size).toBe(10_000);
    expect(ids.has('id-499')).toBe(false);
    expect(ids.has('id-500')).toBe(true);
  });

  it('refuses a capacity below 1', () => {
    expect(() => new RecentIds(0)).toThrow(RangeError);
    expect(() => new RecentIds(1.5)).toThrow(RangeError);
  });
});
