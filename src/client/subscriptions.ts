/**
 * Subscriptions as TeamPass's client keys them: `folder:<id>` and `kb:0`.
 * A tab holds one set; with tab sharing the socket is subscribed to the
 * union of every tab's set.
 */
export const KB_KEY = 'kb:0';

/** A folder id as a positive integer, or null (TeamPass ids are positive). */
export function folderId(value: unknown): number | null {
  const id = typeof value === 'string' && /^[0-9]+$/.test(value) ? Number(value) : value;
  return typeof id === 'number' && Number.isSafeInteger(id) && id > 0 ? id : null;
}

export function folderKey(id: number): string {
  return `folder:${id}`;
}

/** The `subscribe` or `unsubscribe` message for one key, as TeamPass's client sends it. */
export function subscriptionMessage(action: 'subscribe' | 'unsubscribe', key: string): Record<string, unknown> | null {
  if (key === KB_KEY) return { action, channel: 'kb', data: {} };
  const id = key.startsWith('folder:') ? folderId(key.slice(7)) : null;
  return id === null ? null : { action, channel: 'folder', data: { folder_id: id } };
}

/** The key an `unsubscribe` payload names, or null. */
export function unsubscribeKey(payload: Record<string, unknown>): string | null {
  if (payload.action !== 'unsubscribe') return null;
  if (payload.channel === 'kb') return KB_KEY;
  const data = payload.data as Record<string, unknown> | undefined;
  const id = payload.channel === 'folder' && data && typeof data === 'object' ? folderId(data.folder_id) : null;
  return id === null ? null : folderKey(id);
}

/** The folders and KB flag of a key set, as `resume` carries them (at most 1000 folders, the daemon's limit). */
export function resumeSubscriptions(keys: Iterable<string>): { folders: number[]; kb: boolean } {
  const folders: number[] = [];
  let kb = false;
  for (const key of keys) {
    if (key === KB_KEY) kb = true;
    else if (key.startsWith('folder:')) {
      const id = folderId(key.slice(7));
      if (id !== null && folders.length < 1000) folders.push(id);
    }
  }
  return { folders, kb };
}

/** Only subscription keys, from a list another tab sent. */
export function validKeys(value: unknown): string[] {
  if (!Array.isArray(value)) return [];
  return value.filter((k): k is string => typeof k === 'string' && (k === KB_KEY || (k.startsWith('folder:') && folderId(k.slice(7)) !== null)));
}
