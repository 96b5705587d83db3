/**
 * The one event shape (docs/ingest.md §Frames), shared by the ingest socket, the table
 * poller, the CLI and the journal, and its validation. Pure: no I/O.
 */
import { TpWsError } from './errors.js';
import { ID_MAX, positiveInt } from './int.js';

export const TARGET_TYPES = ['user', 'folder', 'kb', 'broadcast'] as const;
export type TargetType = (typeof TARGET_TYPES)[number];

export interface BridgeEvent {
  /** Event id, the dedup key; stored in `event_uuid`. */
  id: string;
  eventType: string;
  targetType: TargetType;
  /** user id or folder id; null for kb and broadcast. */
  targetId: number | null;
  payload: Record<string, unknown>;
  /** Payload as JSON text, encoded once (the journal writes it, fan-out embeds it). */
  payloadJson: string;
  excludeUserId: number | null;
  /** epoch ms */
  createdAt: number;
}

export const EVENT_ID_RE = /^[A-Za-z0-9._:-]{1,64}$/;

export interface EventLimits {
  maxPayloadBytes: number;
}

/**
 * A validation failure (`TPWS_ERR_INVALID_EVENT`): which field, which rule.
 * Never carries the value itself.
 */
export class EventInvalid extends TpWsError {
  constructor(readonly field: string, readonly rule: string) {
    super('TPWS_ERR_INVALID_EVENT', `${field}: ${rule}`);
    this.name = 'EventInvalid';
  }
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

function idField(v: unknown, field: string): number {
  const n = positiveInt(v);
  if (n === null) throw new EventInvalid(field, `must be an integer from 1 to ${ID_MAX}`);
  return n;
}

function excludeId(v: unknown, field: string): number | null {
  if (v === 0 || v === '0') return null;
  return idField(v, field);
}

/**
 * Validate an event as received from a sender (socket frame or CLI). Accepts
 * the wire names of docs/ingest.md (`event_type`, `target_type`, `target_id`,
 * `payload`, `exclude_user_id`, `id`, `created_at`). `newId` supplies an id
 * when the sender gave none. Throws `EventInvalid` naming the field.
 *
 * TeamPass keeps `exclude_user_id` inside the payload too;
 * when only the payload carries it, it is honoured as well.
 */
export function parseEvent(input: unknown, limits: EventLimits, newId: () => string, now = Date.now()): BridgeEvent {
  if (!isPlainObject(input)) throw new EventInvalid('event', 'must be a JSON object');

  let id: string;
  if (input.id === undefined || input.id === null) id = newId();
  else if (typeof input.id !== 'string' || !EVENT_ID_RE.test(input.id)) {
    throw new EventInvalid('id', 'must be 1-64 characters of [A-Za-z0-9._:-]');
  } else id = input.id;

  const eventType = input.event_type;
  if (typeof eventType !== 'string' || eventType.length < 1 || eventType.length > 50 || !/^[\x21-\x7e]+$/.test(eventType)) {
    throw new EventInvalid('event_type', 'must be a string of 1-50 ASCII characters from ! to ~ (no spaces or control characters)');
  }

  const targetType = input.target_type;
  if (typeof targetType !== 'string' || !(TARGET_TYPES as readonly string[]).includes(targetType)) {
    throw new EventInvalid('target_type', `must be one of ${TARGET_TYPES.join(', ')}`);
  }

  // kb and broadcast ignore target_id (TeamPass stores NULL): a stray value is dropped.
  const targetId = targetType === 'user' || targetType === 'folder' ? idField(input.target_id, 'target_id') : null;

  // The payload is an object, or a string holding a JSON object's text: that
  // text is then kept byte for byte (journal, fan-out), so a PHP sender's rows
  // are identical to what its own json_encode() would have inserted.
  let payload: Record<string, unknown>;
  let payloadJson: string | null = null;
  let rawPayload = input.payload;
  if (typeof rawPayload === 'string') {
    if (Buffer.byteLength(rawPayload) > limits.maxPayloadBytes) {
      throw new EventInvalid('payload', `must be at most ${limits.maxPayloadBytes} bytes encoded`);
    }
    try {
      rawPayload = JSON.parse(rawPayload);
    } catch {
      throw new EventInvalid('payload', 'must be a JSON object, or a string holding one');
    }
    // The text `null` is not an absent payload (PHP writes `{}` or `[]` for an empty one):
    // a row holding it is rejected, not delivered as `{}` (found by test/reliability/fuzz-table.test.ts).
    if (rawPayload === null) throw new EventInvalid('payload', 'must be a JSON object, or a string holding one');
    if (isPlainObject(rawPayload)) payloadJson = input.payload as string;
  }
  // PHP encodes an empty array as `[]` (JSON) or an empty msgpack array: it means {}.
  if (rawPayload === undefined || rawPayload === null || (Array.isArray(rawPayload) && rawPayload.length === 0)) payload = {};
  else if (!isPlainObject(rawPayload)) throw new EventInvalid('payload', 'must be a JSON object');
  else payload = rawPayload;

  // exclude_user_id 0 excludes nobody (TeamPass compares it with user ids, which start at 1).
  let excludeUserId: number | null = null;
  if (input.exclude_user_id !== undefined && input.exclude_user_id !== null) {
    excludeUserId = excludeId(input.exclude_user_id, 'exclude_user_id');
  } else if (payload.exclude_user_id !== undefined && payload.exclude_user_id !== null) {
    excludeUserId = excludeId(payload.exclude_user_id, 'payload.exclude_user_id');
  }
  // TeamPass's client reads exclude_user_id inside data (docs/protocol.md §Events); keep the two in step.
  if (excludeUserId !== null && payload.exclude_user_id !== excludeUserId) {
    payload = { ...payload, exclude_user_id: excludeUserId };
    payloadJson = null;
  }

  let createdAt = now;
  if (input.created_at !== undefined && input.created_at !== null) {
    const c = input.created_at;
    if (typeof c !== 'number' || !Number.isInteger(c) || c < 0 || c > 8.64e15) {
      throw new EventInvalid('created_at', 'must be milliseconds since the epoch');
    }
    createdAt = c;
  }

  if (payloadJson === null) {
    try {
      payloadJson = JSON.stringify(payload);
    } catch {
      throw new EventInvalid('payload', 'must be encodable as JSON');
    }
  }
  if (Buffer.byteLength(payloadJson) > limits.maxPayloadBytes) {
    throw new EventInvalid('payload', `must be at most ${limits.maxPayloadBytes} bytes encoded`);
  }

  return { id, eventType, targetType: targetType as TargetType, targetId, payload, payloadJson, excludeUserId, createdAt };
}
