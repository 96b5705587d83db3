/**
 * Remembers event ids for a bounded window — at most `maxSize` ids, each for
 * at most `ttlMs` — so the same event arriving by two paths (socket and
 * table, or an emitter retry after a lost ack) is fanned out once.
 *
 * A Map keeps insertion order, so the oldest ids are at the front: expiry and
 * eviction both pop from there, O(1) amortized per id.
 */
export class Deduper {
  private readonly seen = new Map<string, number>();
  /**
   * No id expires before this (the front entry's expiry, or earlier after an
   * eviction): until then `expire` returns at once, without an iterator, which
   * is most calls of a busy pipeline (two per table row).
   */
  private nextExpiry = Infinity;

  constructor(private readonly maxSize: number, private readonly ttlMs: number) {}

  /** Record `id`; returns false when it was already seen within the window. */
  check(id: string, now: number): boolean {
    this.expire(now);
    if (this.seen.has(id)) return false;
    if (this.seen.size >= this.maxSize) this.seen.delete(this.seen.keys().next().value as string);
    this.seen.set(id, now + this.ttlMs);
    if (this.nextExpiry === Infinity) this.nextExpiry = now + this.ttlMs;
    return true;
  }

  has(id: string, now: number): boolean {
    this.expire(now);
    return this.seen.has(id);
  }

  get size(): number {
    return this.seen.size;
  }

  private expire(now: number): void {
    if (now < this.nextExpiry) return;
    for (const [id, until] of this.seen) {
      if (until > now) {
        this.nextExpiry = until;
        return;
      }
      this.seen.delete(id);
    }
    this.nextExpiry = Infinity;
  }
}
