/**
 * One shared `Set` per distinct list of folder ids. Every socket's identity
 * holds the folders its user may read, and users of one role, or one user's
 * several tabs, hold the same list: at ten thousand sockets a set each costs
 * megabytes, one per distinct list almost nothing. Shared sets are never
 * changed (an access change puts a new set in place); a set nobody holds any
 * more is forgotten by the garbage collector.
 */
export class FolderSets {
  private readonly byKey = new Map<string, WeakRef<ReadonlySet<number>>>();
  private readonly forget = new FinalizationRegistry<string>((key) => {
    if (this.byKey.get(key)?.deref() === undefined) this.byKey.delete(key);
  });

  /** The shared set with the same ids as `folders` (`folders` itself the first time). */
  share(folders: ReadonlySet<number>): ReadonlySet<number> {
    const key = [...folders].sort((a, b) => a - b).join(',');
    const known = this.byKey.get(key)?.deref();
    if (known !== undefined) return known;
    this.byKey.set(key, new WeakRef(folders));
    this.forget.register(folders, key);
    return folders;
  }

  /** Distinct sets remembered (some may be waiting for collection). */
  get size(): number {
    return this.byKey.size;
  }
}
