import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { StatusSampler } from '../../src/admin/status.js';
import { createLogger, type NotableLine } from '../../src/log.js';
import type { BridgeEvent } from '../../src/event.js';

const sink = () => new Writable({ write(_c, _e, cb) { cb(); } });

describe('StatusSampler', () => {
  it('keeps per-bucket deltas by source, bounded to the configured number of buckets', () => {
    const events = { socket: 0, table: 0, replay: 0, api: 0, daemon: 0 };
    let deliveries = 0;
    const s = new StatusSampler({ events: () => events, deliveries: () => deliveries, connections: () => 3 }, { buckets: 2 });
    s.start();
    s.close();
    events.socket = 5; deliveries = 10;
    s.sample(1000);
    events.socket = 7; events.table = 1; deliveries = 13;
    s.sample(2000);
    events.api = 4;
    s.sample(3000);
    expect(s.buckets).toEqual([
      { t: 2000, socket: 2, table: 1, replay: 0, api: 0, daemon: 0, deliveries: 3, connections: 3 },
      { t: 3000, socket: 0, table: 0, replay: 0, api: 4, daemon: 0, deliveries: 0, connections: 3 },
    ]);
  });

  it('gives latency percentiles over the last minute and forgets older buckets', () => {
    const s = new StatusSampler({ events: () => ({ socket: 0, table: 0, replay: 0, api: 0, daemon: 0 }), deliveries: () => 0, connections: () => 0 }, { bucketMs: 30_000 });
    const at = (ageMs: number) => ({ createdAt: Date.now() - ageMs }) as BridgeEvent;
    for (let i = 0; i < 100; i++) s.delivered(at(1000), 'socket');
    s.delivered(at(9_999_999), 'replay');
    s.sample(); s.sample(); s.sample();
    expect(s.latency().count).toBe(0);
    for (let i = 1; i <= 100; i++) s.delivered(at(i), 'socket');
    s.delivered(at(9_999_999), 'replay');
    const l = s.latency();
    expect(l.count).toBe(100);
    expect(l.p50).toBeGreaterThanOrEqual(50);
    expect(l.p99).toBeGreaterThanOrEqual(99);
  });

  it('records warnings and errors the root logger and its children write, message and code only', () => {
    const seen: NotableLine[] = [];
    const log = createLogger('info', sink(), (l) => seen.push(l));
    log.info('fine');
    log.child({ component: 'x' }).warn({ code: 'TPWS_ERR_CONNECT', token: 'abc' }, 'cannot connect');
    log.error(new Error('boom'));
    expect(seen.map(({ level, msg, code }) => ({ level, msg, code }))).toEqual([
      { level: 'warn', msg: 'cannot connect', code: 'TPWS_ERR_CONNECT' },
      { level: 'error', msg: 'boom', code: undefined },
    ]);
    expect(JSON.stringify(seen)).not.toContain('abc');
  });
});
