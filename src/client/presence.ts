/**
 * Presence on a socket shared by tabs. The daemon keeps one item view and
 * one KB view per socket, or per (socket, tab) when a presence action names
 * a tab in `data.tab` (docs/protocol.md §Presence). The leader names the
 * tab that sent each presence action, so one tab's view never replaces
 * another's, and ends a gone tab's views itself.
 */

const PRESENCE_ACTIONS = new Set(['start_item_view', 'stop_item_view', 'start_kb_view', 'stop_kb_view']);

/** What the daemon accepts as `data.tab`; the ids TabChannel makes always match. */
const TAB_ID = /^[A-Za-z0-9_-]{1,64}$/;

export function isTabId(value: unknown): value is string {
  return typeof value === 'string' && TAB_ID.test(value);
}

/**
 * `message` with `data.tab` set to `tab` when it is a presence action. A
 * `tab` the page put there is replaced: a page acts for its own tab only,
 * and only the sending tab's views are ended when it goes. A `data` that is
 * not an object is left for the daemon to refuse.
 */
export function withTab(message: Record<string, unknown>, tab: string): Record<string, unknown> {
  if (typeof message.action !== 'string' || !PRESENCE_ACTIONS.has(message.action)) return message;
  const data = message.data ?? {};
  if (typeof data !== 'object' || Array.isArray(data)) return message;
  return { ...message, data: { ...(data as Record<string, unknown>), tab } };
}

/** The messages that end every view of `tab` on the socket. */
export function stopViewsOf(tab: string): Array<Record<string, unknown>> {
  return [
    { action: 'stop_item_view', data: { tab } },
    { action: 'stop_kb_view', data: { tab } },
  ];
}

/** A positive id as TeamPass's daemon reads one in `stop_*_view` filters, or null (no filter). */
function filterId(value: unknown): number | null {
  const id = Number(value);
  return value !== undefined && value !== null && Number.isSafeInteger(id) && id > 0 ? id : null;
}

/**
 * The views this tab asked for, so that they can be started again on a new
 * socket: a view dies with its socket, and after a resume TeamPass's init
 * script re-sends its KB view (on `connected`) but not its item view (only
 * on a folder's `subscribed` reply, which a resume does not produce).
 */
export class TabViews {
  private item: Record<string, unknown> | null = null;
  private kb: Record<string, unknown> | null = null;

  /**
   * Take note of a presence action this tab sends. Returns what to call if
   * the daemon refuses it (a refused start is not a view), or null.
   */
  note(message: Record<string, unknown>): (() => void) | null {
    const data = message.data ?? {};
    if (typeof data !== 'object' || Array.isArray(data)) return null;
    const { tab: _tab, ...fields } = data as Record<string, unknown>;
    switch (message.action) {
      case 'start_item_view': {
        const view = (this.item = fields);
        return () => {
          if (this.item === view) this.item = null;
        };
      }
      case 'start_kb_view': {
        const view = (this.kb = fields);
        return () => {
          if (this.kb === view) this.kb = null;
        };
      }
      case 'stop_item_view': {
        const id = filterId(fields.item_id);
        if (id === null || id === filterId(this.item?.item_id)) this.item = null;
        return null;
      }
      case 'stop_kb_view': {
        const id = filterId(fields.kb_id);
        if (id === null || id === filterId(this.kb?.kb_id)) this.kb = null;
        return null;
      }
    }
    return null;
  }

  /** The start actions that bring this tab's views back. */
  starts(): Array<{ action: string; data: Record<string, unknown> }> {
    const starts: Array<{ action: string; data: Record<string, unknown> }> = [];
    if (this.item) starts.push({ action: 'start_item_view', data: { ...this.item } });
    if (this.kb) starts.push({ action: 'start_kb_view', data: { ...this.kb } });
    return starts;
  }
}
