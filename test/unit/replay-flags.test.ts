/**
 * The pure parts of `tp-ws replay`: flag parsing (times, targets, statuses)
 * and the token bucket that paces it, on an injected clock.
 */
import { describe, expect, it } from 'vitest';
import { TokenBucket, burstFor, parseReplayFlags, parseTime } from '../../src/cli/replay.js';
import { PROCESSED } from '../../src/store/store.js';

const NOW = Date.UTC(2025, 10, 20, 14, 0, 0);

describe('parseTime', () => {
  it('takes a duration before now in s, m, h, d or w', () => {
    expect(parseTime('30s', '--since', NOW)).toBe(NOW - 30_000);
    expect(parseTime('15m', '--since', NOW)).toBe(NOW - 15 * 60_000);
    expect(parseTime('2h', '--since', NOW)).toBe(NOW - 2 * 3_600_000);
    expect(parseTime('7d', '--since', NOW)).toBe(NOW - 7 * 86_400_000);
    expect(parseTime('1w', '--since', NOW)).toBe(NOW - 7 * 86_400_000);
  });

  it('takes ISO 8601 with Z or an offset as that instant', () => {
    expect(parseTime('2025-11-20T14:00:00Z', '--since')).toBe(Date.UTC(2025, 10, 20, 14));
    expect(parseTime('2025-11-20T14:00:00.250Z', '--since')).toBe(Date.UTC(2025, 10, 20, 14, 0, 0, 250));
    expect(parseTime('2025-11-20 15:30+01:00', '--since')).toBe(Date.UTC(2025, 10, 20, 14, 30));
    expect(parseTime('2025-11-20T09:00:00-0500', '--since')).toBe(Date.UTC(2025, 10, 20, 14));
    expect(parseTime('2025-11-20T14:00z', '--since')).toBe(Date.UTC(2025, 10, 20, 14));
  });

  it('takes a date or date-time without an offset in the local time zone, both alike', () => {
    expect(parseTime('2025-11-20', '--since')).toBe(new Date(2025, 10, 20).getTime());
    expect(parseTime('2025-11-20T14:05', '--since')).toBe(new Date(2025, 10, 20, 14, 5).getTime());
  });

  it('refuses what is not a time, naming the flag, the value and the forms it takes', () => {
    for (const v of ['yesterday', '15', '15 m', '-2h', '2025/11/20', '2025-11-20Z', '1h30m', '']) {
      expect(() => parseTime(v, '--until', NOW), v).toThrow(/^in --until: ".*" is not a time: give an ISO 8601 date or date-time .* or a duration before now \(30s, 15m, 2h, 7d, 1w\)$/);
    }
  });

  it('refuses impossible dates and offsets', () => {
    for (const v of ['2025-02-29', '2025-13-01', '2025-11-31', '2025-11-20T24:00', '2025-11-20T12:60', '1969-12-31']) {
      expect(() => parseTime(v, '--since'), v).toThrow(/^in --since: ".*" is not a valid date and time/);
    }
    expect(parseTime('2024-02-29', '--since')).toBe(new Date(2024, 1, 29).getTime());
    expect(() => parseTime('2025-11-20T10:00+25:00', '--since')).toThrow(/the offset \+25:00 is not one/);
  });
});

describe('parseReplayFlags', () => {
  it('gives the defaults: everything, any status, new ids, 100 events/s, no limit, 5 s ack timeout', () => {
    expect(parseReplayFlags({}, NOW)).toEqual({
      filter: { fromId: null, toId: null, since: null, until: null, eventTypes: [], targets: [], statuses: [] },
      keepIds: false,
      dryRun: false,
      json: false,
      rate: 100,
      limit: null,
      timeoutMs: 5000,
    });
  });

  it('maps each flag to the filter', () => {
    const o = parseReplayFlags({
      fromId: '10', toId: '20', since: '2h', until: '1h',
      type: ['item_updated', 'item_updated', 'kb_updated'],
      target: ['user:5', 'folder:12', 'kb', 'broadcast'],
      status: ['expired', 'delivered', 'expired'],
      keepIds: true, dryRun: true, json: true, rate: '0.5', limit: '1000', timeout: '250',
    }, NOW);
    expect(o).toEqual({
      filter: {
        fromId: 10, toId: 20, since: NOW - 7_200_000, until: NOW - 3_600_000,
        eventTypes: ['item_updated', 'kb_updated'],
        targets: [{ type: 'user', id: 5 }, { type: 'folder', id: 12 }, { type: 'kb' }, { type: 'broadcast' }],
        statuses: [PROCESSED.DELIVERED, PROCESSED.EXPIRED],
      },
      keepIds: true, dryRun: true, json: true, rate: 0.5, limit: 1000, timeoutMs: 250,
    });
  });

  it('takes --status any as no condition, whatever else is given', () => {
    expect(parseReplayFlags({ status: ['pending', 'any'] }).filter.statuses).toEqual([]);
    expect(parseReplayFlags({ status: ['pending', 'rejected'] }).filter.statuses).toEqual([PROCESSED.PENDING, PROCESSED.REJECTED]);
  });

  it('names the flag and the rule of each bad value', () => {
    const bad: [Parameters<typeof parseReplayFlags>[0], RegExp][] = [
      [{ fromId: 'x' }, /^in --from-id: "x" must be a row id/],
      [{ toId: '4294967296' }, /^in --to-id: .* from 1 to 4294967295/],
      [{ fromId: '5', toId: '4' }, /^in --to-id: 4 is below --from-id 5/],
      [{ since: '2h', until: '3h' }, /^in --until: .* is not after --since/],
      [{ type: ['a'.repeat(51)] }, /^in --type: /],
      [{ target: ['folder:0'] }, /^in --target: "folder:0": the folder id must be an integer/],
      [{ target: ['kb:3'] }, /^in --target: "kb:3" must be user:ID, folder:ID, kb or broadcast/],
      [{ status: ['processed'] }, /^in --status: "processed" must be one of pending, delivered, rejected, expired, any/],
      [{ rate: '-1' }, /^in --rate: /],
      [{ rate: '2000000' }, /^in --rate: /],
      [{ limit: '0' }, /^in --limit: /],
      [{ timeout: '600001' }, /^in --timeout: /],
    ];
    for (const [flags, re] of bad) {
      expect(() => parseReplayFlags(flags, NOW), JSON.stringify(flags)).toThrow(re);
      try {
        parseReplayFlags(flags, NOW);
      } catch (err) {
        expect((err as { code?: string }).code).toBe('TPWS_ERR_CONFIG_INVALID');
      }
    }
  });
});

describe('TokenBucket', () => {
  it('starts full, then gives rate tokens a second, never more than the burst', () => {
    let t = 0;
    const b = new TokenBucket(10, 3, () => t);
    expect([b.tryTake(), b.tryTake(), b.tryTake(), b.tryTake()]).toEqual([true, true, true, false]);
    expect(b.delay()).toBeCloseTo(100);
    t = 50;
    expect(b.tryTake()).toBe(false);
    expect(b.delay()).toBeCloseTo(50);
    t = 100;
    expect(b.tryTake()).toBe(true);
    expect(b.tryTake()).toBe(false);
    t = 10_000; // a long pause saves up the burst only
    expect([b.tryTake(), b.tryTake(), b.tryTake(), b.tryTake()]).toEqual([true, true, true, false]);
  });

  it('gives exactly rate × seconds tokens over a long run, on any clock granularity', () => {
    let t = 0;
    const b = new TokenBucket(7, 1, () => t);
    let taken = 0;
    for (; t <= 10_000; t += 3) while (b.tryTake()) taken++;
    // One saved up at the start, then 7 a second until t = 9,999 ms: 69.993 more, so 69.
    expect(taken).toBe(1 + 69);
  });

  it('take() waits for a token and can be aborted', async () => {
    const b = new TokenBucket(1000, 1);
    await b.take();
    await b.take(); // about 1 ms later
    const slow = new TokenBucket(0.001, 1);
    await slow.take();
    const stop = new AbortController();
    const waiting = slow.take(stop.signal);
    stop.abort();
    await expect(waiting).rejects.toMatchObject({ name: 'AbortError' });
  });

  it('refuses a rate that is not positive', () => {
    expect(() => new TokenBucket(0, 1)).toThrow(/rate must be > 0/);
  });

  it('saves up a tenth of a second of events, at least one', () => {
    expect([burstFor(0.5), burstFor(1), burstFor(10), burstFor(100), burstFor(1000)]).toEqual([1, 1, 1, 10, 100]);
  });
});
