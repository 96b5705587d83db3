import { describe, expect, it } from 'vitest';
import { isTpWsError } from '../../src/errors.js';
import { EventInvalid, parseEvent } from '../../src/event.js';
import { Deduper } from '../../src/pipeline/dedup.js';
import { uuidv7 } from '../../src/uuid.js';

const limits = { maxPayloadBytes: 1024 };
const newId = () => 'generated';

describe('parseEvent', () => {
  it('accepts the event shape of docs/ingest.md and assigns an id when absent', () => {
    const e = parseEvent({ event_type: 'item_updated', target_type: 'folder', target_id: 5, payload: { item_id: 1 } }, limits, newId, 1000);
    expect(e).toMatchObject({ id: 'generated', eventType: 'item_updated', targetType: 'folder', targetId: 5, excludeUserId: null, createdAt: 1000 });
    expect(JSON.parse(e.payloadJson)).toEqual({ item_id: 1 });
  });

  it('copies exclude_user_id into the payload, as TeamPass clients expect it there', () => {
    const e = parseEvent({ event_type: 'x', target_type: 'broadcast', exclude_user_id: 3 }, limits, newId);
    expect(e.excludeUserId).toBe(3);
    expect(e.payload.exclude_user_id).toBe(3);
  });

  it('honours exclude_user_id found only in the payload', () => {
    const e = parseEvent({ event_type: 'x', target_type: 'kb', payload: { exclude_user_id: 9 } }, limits, newId);
    expect(e.excludeUserId).toBe(9);
  });

  it('keeps a payload given as JSON text byte for byte', () => {
    const text = '{"label":"a\\/b","n":1.0,"big":12345678901234567890,"ls":"\\u2028"}';
    const e = parseEvent({ event_type: 'x', target_type: 'kb', payload: text }, limits, newId);
    expect(e.payloadJson).toBe(text);
    expect(e.payload.label).toBe('a/b');
  });

  it('re-encodes a JSON-text payload only when exclude_user_id has to be added to it', () => {
    const e = parseEvent({ event_type: 'x', target_type: 'kb', payload: '{"a":1}', exclude_user_id: 4 }, limits, newId);
    expect(JSON.parse(e.payloadJson)).toEqual({ a: 1, exclude_user_id: 4 });
  });

  it('treats exclude_user_id 0 as nobody excluded (TeamPass)', () => {
    expect(parseEvent({ event_type: 'x', target_type: 'broadcast', exclude_user_id: 0 }, limits, newId).excludeUserId).toBeNull();
    const e = parseEvent({ event_type: 'x', target_type: 'broadcast', payload: '{"exclude_user_id":0}' }, limits, newId);
    expect(e.excludeUserId).toBeNull();
    expect(e.payloadJson).toBe('{"exclude_user_id":0}');
  });

  it.each([
    [{ event_type: 'x', target_type: 'kb', payload: 'not json' }, 'payload'],
    [{ event_type: 'x', target_type: 'kb', payload: '"a string"' }, 'payload'],
    [{ event_type: 'x', target_type: 'kb', payload: '[1]' }, 'payload'],
  ])('rejects a JSON-text payload that is not an object: %j', (input, field) => {
    expect(() => parseEvent(input, limits, newId)).toThrow(EventInvalid);
    try { parseEvent(input, limits, newId); } catch (err) { expect((err as EventInvalid).field).toBe(field); }
  });

  it.each([
    [null, 'event'],
    [[1], 'event'],
    [{ event_type: '', target_type: 'user', target_id: 1 }, 'event_type'],
    [{ event_type: 'x'.repeat(51), target_type: 'user', target_id: 1 }, 'event_type'],
    [{ event_type: 'x', target_type: 'room' }, 'target_type'],
    [{ event_type: 'x', target_type: 'user' }, 'target_id'],
    [{ event_type: 'x', target_type: 'folder', target_id: 0 }, 'target_id'],
    [{ event_type: 'x', target_type: 'folder', target_id: 1.5 }, 'target_id'],
    [{ event_type: 'x', target_type: 'kb', payload: [1] }, 'payload'],
    [{ event_type: 'x', target_type: 'kb', payload: { a: 'x'.repeat(2000) } }, 'payload'],
    [{ event_type: 'x', target_type: 'kb', id: 'bad id!' }, 'id'],
    [{ event_type: 'x', target_type: 'kb', exclude_user_id: 'me' }, 'exclude_user_id'],
    [{ event_type: 'x', target_type: 'kb', created_at: 'yesterday' }, 'created_at'],
  ])('rejects %j naming the field %s', (input, field) => {
    try {
      parseEvent(input, limits, newId);
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(EventInvalid);
      expect((err as EventInvalid).field).toBe(field);
    }
  });

  it('throws from the error catalogue: TPWS_ERR_INVALID_EVENT, with a message saying what the rule is', () => {
    let caught: unknown;
    try {
      parseEvent({ event_type: 'item updated', target_type: 'kb' }, limits, newId);
    } catch (err) {
      caught = err;
    }
    expect(isTpWsError(caught, 'TPWS_ERR_INVALID_EVENT')).toBe(true);
    expect((caught as EventInvalid).message).toBe('event_type: must be a string of 1-50 ASCII characters from ! to ~ (no spaces or control characters)');
  });
});

describe('Deduper', () => {
  it('reports an id seen within the window', () => {
    const d = new Deduper(10, 1000);
    expect(d.check('a', 0)).toBe(true);
    expect(d.check('a', 500)).toBe(false);
    expect(d.check('a', 1000)).toBe(true);
  });

  it('forgets the oldest id past its size', () => {
    const d = new Deduper(2, 60_000);
    d.check('a', 0);
    d.check('b', 1);
    d.check('c', 2);
    expect(d.size).toBe(2);
    expect(d.has('a', 3)).toBe(false);
    expect(d.has('c', 3)).toBe(true);
  });

  it('expires each id at its own time, also after an eviction and once empty', () => {
    const d = new Deduper(2, 1000);
    d.check('a', 0);
    d.check('b', 500);
    d.check('c', 600); // evicts a
    expect(d.has('b', 1100)).toBe(true);
    expect(d.has('b', 1500)).toBe(false);
    expect(d.has('c', 1599)).toBe(true);
    expect(d.has('c', 1600)).toBe(false);
    expect(d.size).toBe(0);
    expect(d.check('c', 1700)).toBe(true);
    expect(d.check('c', 2699)).toBe(false);
    expect(d.check('c', 2700)).toBe(true);
  });
});

describe('uuidv7', () => {
  it('is a version-7 RFC 9562 UUID that sorts in creation order', () => {
    const ids = Array.from({ length: 5000 }, () => uuidv7());
    for (const id of ids) expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect([...ids].sort()).toEqual(ids);
    expect(new Set(ids).size).toBe(ids.length);
  });
});
