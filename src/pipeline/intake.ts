import { EventInvalid, parseEvent, type BridgeEvent } from '../event.js';
import { uuidv7 } from '../uuid.js';
import type { Journal, JournalOutcome } from './journal.js';
import type { EventSource, Pipeline } from './pipeline.js';

export interface IntakeOk {
  ok: true;
  event: BridgeEvent;
  seq: number;
  duplicate: boolean;
  /** Resolves when the journal has the event (or gave up waiting for a down store). */
  journaled: Promise<JournalOutcome>;
}

export interface IntakeRejected {
  ok: false;
  /** The sender's id when it could be read. */
  id: string | null;
  error: EventInvalid;
}

export type IntakeResult = IntakeOk | IntakeRejected;

/**
 * The entry for events pushed by a sender (ingest socket, programmatic API):
 * validate → pipeline (dedup, seq, fan-out) → journal. A duplicate is journaled
 * too, so an emitter's fallback row with the same id ends `processed = 1`.
 * Table rows do not come through here: they are already in the table.
 */
export class Intake {
  constructor(
    private readonly pipeline: Pipeline,
    private readonly journal: Journal,
    private readonly maxPayloadBytes: number,
  ) {}

  accept(input: unknown, source: EventSource, now = Date.now()): IntakeResult {
    let event: BridgeEvent;
    try {
      event = parseEvent(input, { maxPayloadBytes: this.maxPayloadBytes }, uuidv7, now);
    } catch (err) {
      if (!(err instanceof EventInvalid)) throw err;
      const id = typeof input === 'object' && input !== null && typeof (input as { id?: unknown }).id === 'string' && err.field !== 'id' ? (input as { id: string }).id : null;
      return { ok: false, id, error: err };
    }
    const r = this.pipeline.accept(event, source, now);
    return { ok: true, event, seq: r.seq, duplicate: !r.delivered, journaled: this.journal.write(event, r.pos) };
  }
}
