/**
 * The WHERE clause of `tp-ws replay`'s selection (`Store.countReplayEvents`,
 * `Store.selectReplayEvents`), for both SQL dialects: they differ only in how
 * a Unix time becomes a `created_at` value. Pure; no driver imported.
 */
import type { ReplayFilter } from './store.js';

export interface ReplayDialect {
  /** SQL turning the `?` placeholder (Unix seconds) into a value comparable with `created_at`. */
  time: string;
  /**
   * Largest Unix second the `created_at` column holds: MySQL's TIMESTAMP ends
   * in January 2038, and `FROM_UNIXTIME` beyond it gives NULL on older MariaDB
   * (which would select nothing); SQLite's text column has no such end.
   */
  maxTimeSec: number;
}

export const SQLITE_REPLAY: ReplayDialect = { time: `datetime(?, 'unixepoch')`, maxTimeSec: Number.MAX_SAFE_INTEGER };
export const MYSQL_REPLAY: ReplayDialect = { time: 'FROM_UNIXTIME(?)', maxTimeSec: 2_147_483_647 };

/**
 * `WHERE …` (without the keyword) and its parameters: `filter`, and
 * `afterId < id ≤ throughId`. Every value is a `?` parameter; the SQL text
 * depends only on which fields are set and the lengths of the lists, so a
 * statement cache stays small.
 */
export function replayWhere(filter: ReplayFilter, afterId: number, throughId: number, d: ReplayDialect): { sql: string; params: unknown[] } {
  const and: string[] = ['id > ?', 'id <= ?'];
  const params: unknown[] = [Math.max(afterId, (filter.fromId ?? 1) - 1), Math.min(throughId, filter.toId ?? throughId)];
  const list = (n: number) => Array.from({ length: n }, () => '?').join(', ');

  // created_at has second resolution: `created_at ≥ since` in ms is `≥ ceil(since / 1000)` in seconds,
  // and `created_at < until` is `< ceil(until / 1000)`.
  if (filter.since != null) {
    const s = Math.ceil(filter.since / 1000);
    if (s > d.maxTimeSec) and.push('1 = 0');
    else {
      and.push(`created_at >= ${d.time}`);
      params.push(Math.max(0, s));
    }
  }
  if (filter.until != null) {
    const u = Math.ceil(filter.until / 1000);
    if (u <= d.maxTimeSec) {
      and.push(`created_at < ${d.time}`);
      params.push(Math.max(0, u));
    }
  }
  if (filter.eventTypes && filter.eventTypes.length > 0) {
    and.push(`event_type IN (${list(filter.eventTypes.length)})`);
    params.push(...filter.eventTypes);
  }
  if (filter.targets && filter.targets.length > 0) {
    const or: string[] = [];
    for (const type of ['user', 'folder'] as const) {
      const ids = filter.targets.flatMap((t) => (t.type === type ? [t.id] : []));
      if (ids.length === 0) continue;
      or.push(`(target_type = ? AND target_id IN (${list(ids.length)}))`);
      params.push(type, ...ids);
    }
    // kb and broadcast rows are matched by type alone: their target_id means nothing.
    const plain = [...new Set(filter.targets.flatMap((t) => (t.type === 'kb' || t.type === 'broadcast' ? [t.type] : [])))];
    if (plain.length > 0) {
      or.push(`target_type IN (${list(plain.length)})`);
      params.push(...plain);
    }
    and.push(`(${or.join(' OR ')})`);
  }
  if (filter.statuses && filter.statuses.length > 0) {
    and.push(`processed IN (${list(filter.statuses.length)})`);
    params.push(...filter.statuses);
  }
  return { sql: and.join(' AND '), params };
}
