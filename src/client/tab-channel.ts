/**
 * The link between the tabs of one browser that talk to the same daemon:
 * a BroadcastChannel for messages, and Web Locks for two facts no message
 * can be trusted to tell — which tab is the leader (it holds the leader lock
 * for as long as it lives) and which tabs are gone (each tab holds its own
 * lock for its lifetime; a tab whose lock another tab obtains has closed,
 * crashed or disconnected).
 */
import { isTabId } from './presence.js';

/** The part of `navigator.locks` used here. */
export interface LockManagerLike {
  request(name: string, options: { signal?: AbortSignal }, callback: () => Promise<unknown> | unknown): Promise<unknown>;
}

export interface BroadcastChannelLike {
  postMessage(message: unknown): void;
  close(): void;
  onmessage: ((event: { data: unknown }) => void) | null;
}

export type BroadcastChannelConstructor = new (name: string) => BroadcastChannelLike;

/** Every message between tabs: `t` says what it is, `tab` who sent it. */
export interface TabMessage {
  tpws: 1;
  t: string;
  tab: string;
  [key: string]: unknown;
}

export interface TabChannelEvents {
  /** A message from another tab. */
  message(msg: TabMessage): void;
  /** This tab obtained the leader lock. */
  leader(): void;
  /** This tab's own lock is held: it can announce itself. */
  ready(): void;
  /** Another tab is gone. */
  gone(tab: string): void;
}

/** Names derived from the daemon URL without its token, so tabs of two daemons never share. */
export function channelNames(url: string): { channel: string; leader: string; tabPrefix: string } {
  let key = url;
  try {
    const parsed = new URL(url);
    parsed.searchParams.delete('token');
    parsed.hash = '';
    key = parsed.href;
  } catch {
    // not absolute: the string as given
  }
  return { channel: `tp-ws:${key}`, leader: `tp-ws:leader:${key}`, tabPrefix: `tp-ws:tab:${key}:` };
}

export class TabChannel {
  /** Unique enough among one browser's tabs, and a valid `data.tab` (presence.ts). */
  readonly tab = `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 10)}`;
  private readonly names: ReturnType<typeof channelNames>;
  private readonly abort = new AbortController();
  private channel: BroadcastChannelLike | null = null;
  private readonly watched = new Set<string>();
  private releaseLocks: Array<() => void> = [];
  /** Messages posted before this tab holds its own lock: another tab that watched it then would think it gone. */
  private queued: TabMessage[] | null = [];

  constructor(
    url: string,
    private readonly locks: LockManagerLike,
    private readonly Channel: BroadcastChannelConstructor,
    private readonly events: TabChannelEvents,
  ) {
    this.names = channelNames(url);
  }

  start(): void {
    const channel = new this.Channel(this.names.channel);
    this.channel = channel;
    channel.onmessage = (event) => {
      const msg = event.data as TabMessage;
      // A tab id is what the leader puts in presence actions: one the daemon would refuse is not a tab of this client.
      if (!msg || typeof msg !== 'object' || msg.tpws !== 1 || typeof msg.t !== 'string' || !isTabId(msg.tab) || msg.tab === this.tab) return;
      this.events.message(msg);
    };
    this.hold(this.names.tabPrefix + this.tab, () => {
      const queued = this.queued ?? [];
      this.queued = null;
      this.events.ready();
      for (const msg of queued) this.channel?.postMessage(msg);
    });
    this.hold(this.names.leader, () => this.events.leader());
  }

  /** Leave: release the locks (the other tabs see this tab gone, and one of them leads) and stop listening. */
  stop(): void {
    this.abort.abort();
    for (const release of this.releaseLocks) release();
    this.releaseLocks = [];
    if (this.channel) {
      this.channel.onmessage = null;
      this.channel.close();
    }
    this.channel = null;
  }

  post(t: string, fields: Record<string, unknown> = {}): void {
    const msg: TabMessage = { ...fields, tpws: 1, t, tab: this.tab };
    if (this.queued) this.queued.push(msg);
    else this.channel?.postMessage(msg);
  }

  /** Be told when `tab` is gone: its lock becomes obtainable only then. */
  watch(tab: string): void {
    if (tab === this.tab || this.watched.has(tab) || this.abort.signal.aborted) return;
    this.watched.add(tab);
    this.locks
      .request(this.names.tabPrefix + tab, { signal: this.abort.signal }, () => {
        this.watched.delete(tab);
        if (!this.abort.signal.aborted) this.events.gone(tab);
      })
      .catch(() => undefined);
  }

  /** Request `name` and keep it until stop(); `granted` runs when it is ours. */
  private hold(name: string, granted: () => void): void {
    this.locks
      .request(name, { signal: this.abort.signal }, () => {
        if (this.abort.signal.aborted) return undefined;
        return new Promise<void>((release) => {
          this.releaseLocks.push(release);
          granted();
        });
      })
      .catch(() => undefined);
  }
}
