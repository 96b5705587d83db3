/**
 * The ids of the events a tab has emitted recently, so an event seen twice
 * (replayed after a reconnect, or received again by a new leader tab) is
 * emitted once. Bounded: past `capacity` ids the oldest is forgotten first
 * (a Set iterates in insertion order).
 */
export class RecentIds {
  private readonly ids = new Set<string>();

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError('dedup capacity must be an integer ≥ 1');
  }

  get size(): number {
    return this.ids.size;
  }

  has(id: string): boolean {
    return this.ids.has(id);
  }

  /** Remember `id`; false when it was already known (the event is a duplicate). */
  add(id: string): boolean {
    if (this.ids.has(id)) return false;
    this.ids.add(id);
    if (this.ids.size > this.capacity) {
      const oldest = this.ids.values().next().value as string;
      this.ids.delete(oldest);
    }
    return true;
  }
}
