import { entitled } from '../fanout/hub.js';
import { textFrame } from '../fanout/frame.js';
import type { Session } from '../fanout/session.js';
import type { ResumePlan } from '../pipeline/history.js';
import { position, SEQ_LIMIT, seqOf } from '../pipeline/position.js';
import { ErrorCode, requestError, responseMessage } from '../protocol/messages.js';
import { canAccessFolder, canAccessKb, MAX_FOLDER_SUBSCRIPTIONS, type ActionContext, type ClientMessage } from './actions.js';

interface ResumeRequest {
  epoch: string;
  seq: number;
  folders: number[];
  kb: boolean;
}

const EPOCH_RE = /^[A-Za-z0-9_-]{1,64}$/;

/** Validate `resume`'s data (docs/protocol.md §Resume); a string is what is wrong with it. */
export function parseResume(data: Record<string, unknown>): ResumeRequest | string {
  const { epoch, seq, folders = [], kb = false } = data;
  if (typeof epoch !== 'string' || !EPOCH_RE.test(epoch)) return 'epoch must be a string of 1-64 characters [A-Za-z0-9_-]';
  if (typeof seq !== 'number' || !Number.isInteger(seq) || seq < 0 || seq >= SEQ_LIMIT) return `seq must be an integer from 0 to ${SEQ_LIMIT - 1}`;
  if (!Array.isArray(folders) || folders.length > MAX_FOLDER_SUBSCRIPTIONS) return `folders must be an array of at most ${MAX_FOLDER_SUBSCRIPTIONS} folder ids`;
  if (!folders.every((f) => typeof f === 'number' && Number.isInteger(f) && f > 0 && f <= 0xffffffff)) return 'folders must hold positive integer folder ids';
  if (typeof kb !== 'boolean') return 'kb must be true or false';
  return { epoch, seq, folders: [...new Set(folders as number[])], kb };
}

/**
 * `resume` (docs/protocol.md §Resume): subscribe what the client asks for and
 * may read now, then send the `resumed` reply and every event it missed since
 * its position that it may receive now, in order, then the live events held
 * meanwhile — or `recovered: false` when the history cannot cover the gap.
 * Sends its reply itself (ahead of the held events) and returns null.
 */
export async function resume(ctx: ActionContext, session: Session, msg: ClientMessage): Promise<Record<string, unknown> | null> {
  const rid = msg.requestId;
  const req = parseResume(msg.data);
  if (typeof req === 'string') return requestError(ErrorCode.INVALID_REQUEST, req, rid);
  const kb = req.kb && (await canAccessKb(ctx, session));
  let epochNo: number | null | 'down';
  try {
    epochNo = await ctx.history.epochNumber(req.epoch);
  } catch {
    epochNo = 'down';
  }
  if (session.closed) return null;

  // One turn from here to the hold: the head, the ring's part and the
  // subscriptions are taken together, so every event after the head reaches
  // the session live (held until the replay is written) and none before it.
  const folders: number[] = [];
  const denied: number[] = [];
  for (const f of req.folders) {
    if (canAccessFolder(session, f)) {
      ctx.hub.subscribeFolder(session, f);
      folders.push(f);
    } else denied.push(f);
  }
  if (kb) ctx.hub.subscribeKb(session);
  const from = typeof epochNo === 'number' ? position(epochNo, req.seq) : ctx.history.head;
  const snap = ctx.history.snapshot(from);
  session.hold();

  let plan: ResumePlan;
  if (epochNo === 'down') plan = { recovered: false, reason: 'store_unavailable' };
  else if (epochNo === null) plan = { recovered: false, reason: 'unknown_epoch' };
  else plan = await ctx.history.plan(from, snap);
  if (session.closed) return null;

  // Access is checked as it is now: a folder lost while away is not replayed.
  const allowed = (folderId: number) => canAccessFolder(session, folderId);
  let frames: Buffer[] = [];
  if (plan.recovered) {
    let bytes = 0;
    for (const e of plan.entries) {
      if (!entitled(session, e, allowed)) continue;
      frames.push(e.frame);
      bytes += e.frame.length;
    }
    if (bytes > ctx.maxBufferedBytes / 2) {
      plan = { recovered: false, reason: 'too_many' };
      frames = [];
    }
  }
  const reply: Record<string, unknown> = { recovered: plan.recovered };
  if (!plan.recovered) reply.reason = plan.reason;
  Object.assign(reply, { epoch: ctx.history.epoch, seq: seqOf(snap.head), replayed: frames.length, folders, denied, kb: session.kb });
  ctx.resumed(plan.recovered ? 'recovered' : plan.reason, frames.length);
  session.sendAhead([textFrame(JSON.stringify(responseMessage('resumed', reply, rid))), ...frames]);
  session.release(allowed);
  return null;
}
