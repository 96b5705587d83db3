import { describe, expect, it } from 'vitest';
import { AuthFailureLimiter, SlidingLog } from '../../src/gateway/rate-limit.js';
import { clientAddress, countsAuthFailures, isLoopback } from '../../src/gateway/client-ip.js';
import { phpInt } from '../../src/int.js';
import { tokenFromUrl } from '../../src/gateway/gateway.js';
import { CloseCode, CloseReason, reconnectPolicy } from '../../src/protocol/close-codes.js';
import { encodeEventMessage } from '../../src/protocol/messages.js';

describe('SlidingLog', () => {
  it('allows `limit` messages per window and refuses the next one', () => {
    const l = new SlidingLog(3, 1000);
    expect([l.take(0), l.take(10), l.take(20), l.take(30)]).toEqual([true, true, true, false]);
  });

  it('allows again once the oldest accepted message leaves the window', () => {
    const l = new SlidingLog(2, 1000);
    l.take(0);
    l.take(500);
    expect(l.take(999)).toBe(false);
    expect(l.take(1000)).toBe(true);
    expect(l.take(1001)).toBe(false);
    expect(l.take(1500)).toBe(true);
  });

  it('does not record refused messages and counts refusals per window', () => {
    const l = new SlidingLog(1, 1000);
    l.take(0);
    for (let t = 1; t <= 5; t++) l.take(t);
    expect(l.rejections).toBe(5);
    expect(l.take(1000)).toBe(true);
  });

  it('is idle only once every accepted message and refusal is a window old', () => {
    const l = new SlidingLog(2, 1000);
    expect(l.idle(0)).toBe(true);
    l.take(0);
    l.take(500);
    l.take(1000);
    expect(l.take(1200)).toBe(false);
    expect(l.idle(1999)).toBe(false); // the message at 1000 is still in its window
    expect(l.idle(2000)).toBe(false); // the refusal at 1200 is
    expect(l.idle(2200)).toBe(true);
  });

  it('decides like a new limiter from the moment it is idle', () => {
    const old = new SlidingLog(3, 1000);
    for (const t of [0, 1, 2, 3, 4, 5, 600, 700]) old.take(t);
    const now = 1700;
    expect(old.idle(now)).toBe(true);
    const fresh = new SlidingLog(3, 1000);
    const times = [now, now + 1, now + 2, now + 3, now + 4, now + 500, now + 1000, now + 1001, now + 1002, now + 1003];
    // Refusals per window are read after a refusal, as the gateway does.
    const run = (l: SlidingLog) => times.map((t) => (l.take(t) ? 'ok' : l.rejections));
    expect(run(old)).toEqual(run(fresh));
  });
});

describe('AuthFailureLimiter', () => {
  it('blocks an address after `limit` failures within the window, then forgets them', () => {
    const a = new AuthFailureLimiter(3, 60_000);
    for (let i = 0; i < 3; i++) a.recordFailure('10.0.0.1', i);
    expect(a.isBlocked('10.0.0.1', 10)).toBe(true);
    expect(a.isBlocked('10.0.0.2', 10)).toBe(false);
    expect(a.isBlocked('10.0.0.1', 60_001)).toBe(false);
  });

  it('tracks a bounded number of addresses', () => {
    const a = new AuthFailureLimiter(3, 60_000, 100);
    for (let i = 0; i < 1000; i++) a.recordFailure(`10.0.${i >> 8}.${i & 255}`, 0);
    expect(a.trackedIps).toBe(100);
    a.sweep(60_000);
    expect(a.trackedIps).toBe(0);
  });
});

describe('clientAddress', () => {
  const trusted = new Set(['127.0.0.1', '::1', '10.0.0.5']);
  const ip = (peer: string, headers: Record<string, string>) => clientAddress(peer, headers, trusted);

  it('takes the peer address when the peer is not a trusted proxy, whatever the headers say', () => {
    expect(ip('203.0.113.9', { 'x-forwarded-for': '198.51.100.1', 'x-real-ip': '198.51.100.2' })).toEqual({ ip: '203.0.113.9', unforwarded: false, via: null });
  });

  it('takes the right-most untrusted X-Forwarded-For hop behind trusted proxies', () => {
    expect(ip('127.0.0.1', { 'x-forwarded-for': '198.51.100.1, 203.0.113.7, 10.0.0.5' }).ip).toBe('203.0.113.7');
    expect(ip('::ffff:127.0.0.1', { 'x-forwarded-for': '198.51.100.1' }).ip).toBe('198.51.100.1');
  });

  it('stops at a malformed hop, keeping the last address known good', () => {
    expect(ip('127.0.0.1', { 'x-forwarded-for': 'garbage, 203.0.113.7, 10.0.0.5' })).toEqual({ ip: '203.0.113.7', unforwarded: false, via: 'x-forwarded-for' });
  });

  it('takes X-Real-IP from a trusted proxy that sets no usable X-Forwarded-For (TeamPass\'s nginx example)', () => {
    expect(ip('127.0.0.1', { 'x-real-ip': '198.51.100.4' })).toEqual({ ip: '198.51.100.4', unforwarded: false, via: 'x-real-ip' });
    expect(ip('127.0.0.1', { 'x-forwarded-for': 'garbage', 'x-real-ip': ' ::ffff:198.51.100.4 ' }).ip).toBe('198.51.100.4');
    expect(ip('127.0.0.1', { 'x-forwarded-for': '198.51.100.1, 198.51.100.4', 'x-real-ip': '198.51.100.4' }).ip).toBe('198.51.100.4');
  });

  it('believes X-Real-IP over an X-Forwarded-For the proxy did not write (its last hop is not the X-Real-IP address)', () => {
    // nginx with only `proxy_set_header X-Real-IP $remote_addr;` passes the client's own header through.
    expect(ip('127.0.0.1', { 'x-forwarded-for': '192.0.2.1', 'x-real-ip': '198.51.100.4' })).toEqual({ ip: '198.51.100.4', unforwarded: false, via: 'x-real-ip' });
    // nginx with `$proxy_add_x_forwarded_for` and X-Real-IP: the last hop is what the proxy saw.
    expect(ip('127.0.0.1', { 'x-forwarded-for': '192.0.2.1, 198.51.100.4', 'x-real-ip': '198.51.100.4' })).toEqual({ ip: '198.51.100.4', unforwarded: false, via: 'x-forwarded-for' });
    expect(ip('127.0.0.1', { 'x-forwarded-for': '198.51.100.9, 10.0.0.5', 'x-real-ip': '10.0.0.5' }).ip).toBe('198.51.100.9');
  });

  it('says when a trusted proxy forwarded no client address', () => {
    expect(ip('127.0.0.1', {})).toEqual({ ip: '127.0.0.1', unforwarded: true, via: null });
    expect(ip('10.0.0.5', { 'x-forwarded-for': 'garbage', 'x-real-ip': 'not-an-ip' })).toEqual({ ip: '10.0.0.5', unforwarded: true, via: null });
  });

  it('counts failed authentications per client, never against loopback or a proxy that forwarded no address', () => {
    expect(countsAuthFailures(ip('127.0.0.1', { 'x-forwarded-for': '198.51.100.1' }))).toBe(true);
    expect(countsAuthFailures(ip('203.0.113.9', {}))).toBe(true);
    expect(countsAuthFailures(ip('10.0.0.5', {}))).toBe(false); // a non-loopback proxy, nothing forwarded
    expect(countsAuthFailures(ip('127.0.0.1', {}))).toBe(false);
    expect(countsAuthFailures(ip('127.0.0.1', { 'x-real-ip': '127.0.0.1' }))).toBe(false);
  });

  it('knows loopback', () => {
    expect(isLoopback('127.0.0.1')).toBe(true);
    expect(isLoopback('::1')).toBe(true);
    expect(isLoopback('198.51.100.1')).toBe(false);
  });
});

describe('phpInt', () => {
  it('casts like PHP (int)', () => {
    expect([phpInt('12abc'), phpInt('abc'), phpInt(3.9), phpInt(true), phpInt(null), phpInt([1]), phpInt('-5'), phpInt(1e20)]).toEqual([12, 0, 3, 1, 0, 0, 0, 0]);
  });
});

describe('tokenFromUrl', () => {
  it('reads ?token= like PHP parse_str (last one wins)', () => {
    expect(tokenFromUrl('/ws?token=abc')).toBe('abc');
    expect(tokenFromUrl('/?a=1&token=x&token=y')).toBe('y');
    expect(tokenFromUrl('/ws')).toBeNull();
    expect(tokenFromUrl('/ws?token=a%2Bb')).toBe('a+b');
  });
});

describe('close codes', () => {
  it('map to reconnect policies by range', () => {
    expect(reconnectPolicy(CloseCode.SHUTDOWN)).toBe('now');
    expect(reconnectPolicy(CloseCode.SLOW_CONSUMER)).toBe('backoff');
    expect(reconnectPolicy(CloseCode.TOKEN_EXPIRED)).toBe('backoff');
    expect(reconnectPolicy(4000)).toBe('none');
    expect(reconnectPolicy(4099)).toBe('none');
    expect(reconnectPolicy(4199)).toBe('backoff');
    expect(reconnectPolicy(4299)).toBe('now');
    expect(reconnectPolicy(1006)).toBe('backoff');
  });

  it('have reasons within the 123-byte control-frame limit', () => {
    for (const r of Object.values(CloseReason)) expect(Buffer.byteLength(r)).toBeLessThanOrEqual(123);
  });
});

describe('encodeEventMessage', () => {
  it('keeps TeamPass fields and adds id, seq and epoch', () => {
    const s = encodeEventMessage({ eventType: 'item_updated', payloadJson: '{"item_id":4,"label":"a/é"}', createdAtMs: 1_700_000_000_999, id: 'e1', seq: 7, epoch: 'ep-1' });
    expect(JSON.parse(s)).toEqual({ type: 'event', event: 'item_updated', data: { item_id: 4, label: 'a/é' }, timestamp: 1_700_000_000, id: 'e1', seq: 7, epoch: 'ep-1' });
  });
});
