import { describe, expect, it } from 'vitest';
import { PositionTracker, readPosition } from '../../src/client/position-tracker.js';
import { RecentIds } from '../../src/client/recent-ids.js';

const E1 = '019a0000-0000-7000-8000-000000000001';
const E2 = '019a0000-0000-7000-8000-000000000002';

function ev(id: string, seq: number, epoch = E1): Record<string, unknown> {
  return { type: 'event', event: 'item_updated', data: {}, id, seq, epoch };
}

/** The events (by id) that a tracker lets through, in order. */
function run(t: PositionTracker, events: Array<Record<string, unknown>>): string[] {
  return events.filter((e) => t.event(e)).map((e) => String(e.id ?? 'presence'));
}

describe('readPosition', () => {
  it('reads a well-formed epoch and seq, and nothing else', () => {
    expect(readPosition({ epoch: E1, seq: 0 })).toEqual({ epoch: E1, seq: 0 });
    expect(readPosition({ epoch: E1, seq: 2 ** 32 - 1 })).toEqual({ epoch: E1, seq: 2 ** 32 - 1 });
    for (const bad of [{}, { epoch: E1 }, { epoch: '', seq: 1 }, { epoch: 'a b', seq: 1 }, { epoch: 'x'.repeat(65), seq: 1 }, { epoch: E1, seq: -1 }, { epoch: E1, seq: 1.5 }, { epoch: E1, seq: 2 ** 32 }, { epoch: E1, seq: '3' }]) {
      expect(readPosition(bad)).toBeNull();
    }
  });
});

describe('PositionTracker', () => {
  it('adopts the first connected position and subscribes; later connections resume', () => {
    const t = new PositionTracker(new RecentIds(100));
    expect(t.connected({ epoch: E1, seq: 7 })).toBe('subscribe');
    expect(t.position).toEqual({ epoch: E1, seq: 7 });
    expect(t.connected({ epoch: E2, seq: 100 })).toBe('resume');
    // A later `connected` does not move the position: the resume reply does.
    expect(t.position).toEqual({ epoch: E1, seq: 7 });
  });

  it('live events of the current epoch: emitted once, in increasing seq, advancing the position', () => {
    const t = new PositionTracker(new RecentIds(100), { epoch: E1, seq: 10 });
    expect(run(t, [ev('a', 9), ev('b', 11), ev('b', 11), ev('c', 11), ev('d', 13), ev('e', 12)])).toEqual(['b', 'd']);
    expect(t.position).toEqual({ epoch: E1, seq: 13 });
  });

  it('an event of another epoch outside a replay: emitted if its id is new, position unchanged', () => {
    const t = new PositionTracker(new RecentIds(100), { epoch: E1, seq: 10 });
    expect(run(t, [ev('x', 1, E2), ev('x', 1, E2)])).toEqual(['x']);
    expect(t.position).toEqual({ epoch: E1, seq: 10 });
  });

  it('presence events (no id) are always emitted, even while a resume is unanswered', () => {
    const t = new PositionTracker(new RecentIds(100), { epoch: E1, seq: 10 });
    t.resumeSent();
    expect(run(t, [{ type: 'event', event: 'item_viewers_changed', data: {} }])).toEqual(['presence']);
  });

  it('ignores positioned events and ping positions while the resume is unanswered', () => {
    const t = new PositionTracker(new RecentIds(100), { epoch: E1, seq: 10 });
    t.resumeSent();
    expect(run(t, [ev('early', 11)])).toEqual([]);
    expect(t.ping({ epoch: E1, seq: 50 })).toBe(false);
    expect(t.position).toEqual({ epoch: E1, seq: 10 });
  });

  it('counts the replay, emits unseen ids in order, then takes the reply position', () => {
    const seen = new RecentIds(100);
    seen.add('b'); // already emitted before the drop
    const t = new PositionTracker(seen, { epoch: E1, seq: 10 });
    t.resumeSent();
    t.resumed({ recovered: true, epoch: E2, seq: 3, replayed: 4 });
    expect(t.recovering).toBe(true);
    // Replayed events carry their own (old and new) epochs; the position does not move until the last.
    expect(run(t, [ev('a', 11), ev('b', 12), ev('c', 1, E2)])).toEqual(['a', 'c']);
    expect(t.position).toEqual({ epoch: E1, seq: 10 });
    expect(t.ping({ epoch: E2, seq: 9 })).toBe(false);
    expect(run(t, [ev('d', 3, E2)])).toEqual(['d']);
    expect(t.position).toEqual({ epoch: E2, seq: 3 });
    expect(t.recovering).toBe(false);
    // Live again: seq must pass 3 in E2.
    expect(run(t, [ev('c', 1, E2), ev('e', 3, E2), ev('f', 4, E2)])).toEqual(['f']);
  });

  it('takes the reply position at once when nothing is replayed (recovered or not)', () => {
    const t = new PositionTracker(new RecentIds(100), { epoch: E1, seq: 10 });
    t.resumeSent();
    t.resumed({ recovered: false, reason: 'gap', epoch: E2, seq: 40, replayed: 0 });
    expect(t.position).toEqual({ epoch: E2, seq: 40 });
    expect(t.recovering).toBe(false);
  });

  it('a socket lost in the middle of a replay keeps the old position, and the next replay drops what was emitted', () => {
    const t = new PositionTracker(new RecentIds(100), { epoch: E1, seq: 10 });
    t.resumeSent();
    t.resumed({ recovered: true, epoch: E1, seq: 14, replayed: 4 });
    expect(run(t, [ev('a', 11), ev('b', 12)])).toEqual(['a', 'b']);
    t.disconnected();
    expect(t.position).toEqual({ epoch: E1, seq: 10 });
    expect(t.connected({ epoch: E1, seq: 20 })).toBe('resume');
    t.resumeSent();
    t.resumed({ recovered: true, epoch: E1, seq: 20, replayed: 5 });
    expect(run(t, [ev('a', 11), ev('b', 12), ev('c', 13), ev('d', 14), ev('e', 20)])).toEqual(['c', 'd', 'e']);
    expect(t.position).toEqual({ epoch: E1, seq: 20 });
  });

  it('a ping of the current epoch advances an idle position, never backwards, never across epochs', () => {
    const t = new PositionTracker(new RecentIds(100), { epoch: E1, seq: 10 });
    expect(t.ping({ epoch: E1, seq: 25 })).toBe(true);
    expect(t.ping({ epoch: E1, seq: 20 })).toBe(false);
    expect(t.ping({ epoch: E2, seq: 99 })).toBe(false);
    expect(t.ping({ type: 'ping', timestamp: 1 })).toBe(false);
    expect(t.position).toEqual({ epoch: E1, seq: 25 });
  });
});
