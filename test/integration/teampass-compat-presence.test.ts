/**
 * TeamPass compatibility, part 2: consultation presence (reference §4.2, §5,
 * §11.16), edit locks seen on subscribe and renewed over WS (§2.4, §4.2,
 * §11.9-10) and the release of a user's locks after their last socket closes
 * (§2.4, §5 "On close", §11.17), with tp-ws's grace period
 * (`teampass.lockReleaseGraceMs`, GRACE_MS here, short but with room for a reconnect on a loaded machine).
 * Written from the reference, not from tp-ws's code.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeMysql } from '../helpers/mysql.js';
import {
  expectHandlerError, nowSec, sleep, sortedViewers, startCompat, until, viewer,
  type Compat, type Message, type Tab, type TpUser,
} from './teampass-compat-shared.js';

const GRACE_MS = 500;

/** An `item_viewers_changed` event as §5 shapes it. */
function expectItemViewers(m: Message, itemId: number, folderId: number, viewers: TpUser[]): void {
  expect(m).toMatchObject({ type: 'event', event: 'item_viewers_changed' });
  expect(m.data).toMatchObject({ item_id: itemId, folder_id: folderId });
  expect(sortedViewers(m.data.viewers)).toEqual(viewers.map(viewer).sort((a, b) => a.user_id - b.user_id));
  expect(Number.isInteger(m.data.server_timestamp)).toBe(true);
  expect(Number.isInteger(m.timestamp)).toBe(true);
  expect(Math.abs(m.timestamp - nowSec())).toBeLessThanOrEqual(5);
}

function expectKbViewers(m: Message, kbId: number, viewers: TpUser[]): void {
  expect(m).toMatchObject({ type: 'event', event: 'kb_viewers_changed' });
  expect(m.data).toMatchObject({ kb_id: kbId });
  expect(sortedViewers(m.data.viewers)).toEqual(viewers.map(viewer).sort((a, b) => a.user_id - b.user_id));
  expect(Number.isInteger(m.data.server_timestamp)).toBe(true);
  expect(Number.isInteger(m.timestamp)).toBe(true);
}

/** A JSON column as mysql2 returns it: text, or already decoded. */
const asJson = (v: unknown): unknown => (typeof v === 'string' ? JSON.parse(v) : v);

const sortedOf = (users: TpUser[]) => users.map(viewer).sort((a, b) => a.user_id - b.user_id);

describeMysql('TeamPass compatibility: presence and edit locks', () => {
  let c: Compat;
  const subscribe = (t: Tab, folderId: number) => t.request({ action: 'subscribe', channel: 'folder', data: { folder_id: folderId } });
  const subscribeKb = (t: Tab) => t.request({ action: 'subscribe', channel: 'kb', data: {} });
  const open = async (u: TpUser) => (await c.tab(u.token)).tab;
  /**
   * User `u` viewing `item` in a new folder `f`, watched by `obs` (another user subscribed to `f`),
   * once `obs` got the view's first item_viewers_changed. `viewerFolders`: more folders for `u`;
   * `viewerSubscribes`: `u`'s socket subscribes to `f` too.
   */
  const watchedView = async (o: { viewerFolders?: number[]; viewerSubscribes?: boolean } = {}) => {
    const f = c.folder();
    const u = await c.user({ folders: [f, ...(o.viewerFolders ?? [])] });
    const other = await c.user({ folders: [f] });
    const item = await c.item(f);
    const t = await open(u);
    const obs = await open(other);
    if (o.viewerSubscribes === true) await subscribe(t, f);
    await subscribe(obs, f);
    await t.request({ action: 'start_item_view', data: { item_id: item } });
    await obs.nextNamed('item_viewers_changed', (d) => d.item_id === item);
    return { f, u, item, t, obs };
  };

  beforeAll(async () => {
    c = await startCompat({ 'teampass.lockReleaseGraceMs': GRACE_MS }, 200);
  });
  afterAll(async () => c?.stop());

  describe('item views (§4.2 start/stop_item_view, §5 presence)', () => {
    it('start_item_view: item_id required; unknown item → not_found; item in a folder the user cannot access → forbidden', async () => {
      const f = c.folder();
      const hidden = c.folder();
      const u = await c.user({ folders: [f] });
      const adm = await c.user({ admin: true });
      const hiddenItem = await c.item(hidden);
      const t = await open(u);
      const none = await t.request({ action: 'start_item_view', data: {} });
      expectHandlerError(none, 'invalid_request', 'item_id is required', none.request_id);
      const missing = await t.request({ action: 'start_item_view', data: { item_id: 99_999_999, folder_id: f } });
      expectHandlerError(missing, 'not_found', 'Item not found', missing.request_id);
      const a = await open(adm);
      const missingAdmin = await a.request({ action: 'start_item_view', data: { item_id: 99_999_999 } });
      expectHandlerError(missingAdmin, 'not_found', 'Item not found', missingAdmin.request_id);
      // data.folder_id is ignored: the folder comes from items.id_tree.
      const denied = await t.request({ action: 'start_item_view', data: { item_id: hiddenItem, folder_id: f } });
      expectHandlerError(denied, 'forbidden', 'Access denied to this item folder', denied.request_id);
      // Admins may view items in any folder.
      const ok = await a.request({ action: 'start_item_view', data: { item_id: hiddenItem } });
      expect(ok).toMatchObject({ type: 'response', status: 'success', action: 'item_view_started', item_id: hiddenItem, folder_id: hidden });
    });

    it('start_item_view: the reply, and the broadcast to the folder (sender included) written before it', async () => {
      const f = c.folder();
      const u = await c.user({ folders: [f] });
      const item = await c.item(f);
      const t = await open(u);
      await subscribe(t, f);
      const r = await t.request({ action: 'start_item_view', data: { item_id: item, folder_id: 424242 } });
      expect(r).toMatchObject({ type: 'response', status: 'success', action: 'item_view_started', item_id: item, folder_id: f, request_id: r.request_id });
      expect(r.viewers).toEqual([viewer(u)]);
      const ev = t.history.findIndex((m) => m.type === 'event' && m.event === 'item_viewers_changed' && m.data?.item_id === item);
      expect(ev, 'item_viewers_changed reached the sender').toBeGreaterThanOrEqual(0);
      expect(ev, 'the broadcast precedes the reply').toBeLessThan(t.history.indexOf(t.history.find((m) => m.request_id === r.request_id)!));
      expectItemViewers(t.history[ev], item, f, [u]);
    });

    it('alice and bob in one folder: viewers are shared, include the viewer and are de-duplicated across alice\'s tabs', async () => {
      const f = c.folder();
      const alice = await c.user({ folders: [f] });
      const bob = await c.user({ folders: [f] });
      const carol = await c.user({ folders: [f] });
      const item = await c.item(f);
      const a1 = await open(alice);
      const a2 = await open(alice);
      const b = await open(bob);
      await subscribe(a1, f);
      await subscribe(b, f);

      const r1 = await a1.request({ action: 'start_item_view', data: { item_id: item, folder_id: f } });
      expect(r1.viewers).toEqual([viewer(alice)]);
      expectItemViewers(await b.nextNamed('item_viewers_changed', (d) => d.item_id === item), item, f, [alice]);

      // alice's second tab (not subscribed to the folder) views the same item: still one alice.
      const r2 = await a2.request({ action: 'start_item_view', data: { item_id: item, folder_id: f } });
      expect(r2).toMatchObject({ type: 'response', status: 'success', action: 'item_view_started', item_id: item, folder_id: f });
      expect(r2.viewers).toEqual([viewer(alice)]);

      const r3 = await b.request({ action: 'start_item_view', data: { item_id: item, folder_id: f } });
      expect(sortedViewers(r3.viewers)).toEqual(sortedOf([alice, bob]));
      const seen = await a1.nextNamed('item_viewers_changed', (d) => d.item_id === item && d.viewers.length === 2);
      expectItemViewers(seen, item, f, [alice, bob]);

      // A late subscriber sees who is viewing what (viewing_items).
      const cTab = await open(carol);
      const s = await subscribe(cTab, f);
      expect(s.locked_items).toEqual([]);
      expect(s.viewing_items).toHaveLength(1);
      expect(s.viewing_items[0].item_id).toBe(item);
      expect(sortedViewers(s.viewing_items[0].viewers)).toEqual(sortedOf([alice, bob]));

      // Presence broadcasts go to the folder's subscribers only: alice's unsubscribed tab got none.
      await c.barrier([a2]);
      expect(a2.events('item_viewers_changed')).toEqual([]);

      // alice closes one tab: she still views through the other.
      await a2.close();
      await c.barrier([b]);
      const s2 = await subscribe(cTab, f);
      expect(sortedViewers(s2.viewing_items[0].viewers)).toEqual(sortedOf([alice, bob]));
    });

    it('start_item_view: ids are cast like PHP (int)', async () => {
      const f = c.folder();
      const u = await c.user({ folders: [f] });
      const item = await c.item(f);
      const t = await open(u);
      const r = await t.request({ action: 'start_item_view', data: { item_id: String(item), folder_id: String(f) } });
      expect(r).toMatchObject({ type: 'response', status: 'success', action: 'item_view_started', item_id: item, folder_id: f });
      const s = await t.request({ action: 'stop_item_view', data: { item_id: String(item) } });
      expect(s).toMatchObject({ type: 'response', status: 'success', action: 'item_view_stopped', item_id: item, folder_id: f });
    });

    it('starting the same view twice answers twice but broadcasts once', async () => {
      const { f, u, item, t, obs } = await watchedView();
      const again = await t.request({ action: 'start_item_view', data: { item_id: item } });
      expect(again).toMatchObject({ type: 'response', status: 'success', action: 'item_view_started', item_id: item, folder_id: f, viewers: [viewer(u)] });
      await c.barrier([obs]);
      expect(obs.events('item_viewers_changed', (m) => m.data.item_id === item)).toHaveLength(1);
    });

    it('moving to another item releases the old view: old target broadcast first, then the new one', async () => {
      const f = c.folder();
      const g = c.folder();
      const u = await c.user({ folders: [f, g] });
      const o = await c.user({ folders: [f, g] });
      const i1 = await c.item(f);
      const i2 = await c.item(g);
      const t = await open(u);
      const obs = await open(o);
      await subscribe(obs, f);
      await subscribe(obs, g);
      await t.request({ action: 'start_item_view', data: { item_id: i1 } });
      await obs.nextNamed('item_viewers_changed', (d) => d.item_id === i1);
      const mark = obs.history.length;
      await t.request({ action: 'start_item_view', data: { item_id: i2 } });
      await obs.nextNamed('item_viewers_changed', (d) => d.item_id === i2);
      const after = obs.history.slice(mark).filter((m) => m.event === 'item_viewers_changed');
      expect(after.map((m) => m.data.item_id)).toEqual([i1, i2]);
      expectItemViewers(after[0], i1, f, []);
      expectItemViewers(after[1], i2, g, [u]);
    });

    it('stop_item_view: a view of another item is kept; with no data the current view ends', async () => {
      const { f, item: viewed, t, obs } = await watchedView();
      const otherItem = await c.item(f);

      const miss = await t.request({ action: 'stop_item_view', data: { item_id: otherItem } });
      expect(miss).toMatchObject({ type: 'response', status: 'success', action: 'item_view_stopped', item_id: otherItem, folder_id: f, request_id: miss.request_id });
      await c.barrier([obs]);
      expect(obs.events('item_viewers_changed', (m) => m.data.item_id === viewed)).toHaveLength(1);

      const stop = await t.request({ action: 'stop_item_view', data: {} });
      expect(stop).toMatchObject({ type: 'response', status: 'success', action: 'item_view_stopped', item_id: null, folder_id: null, request_id: stop.request_id });
      expectItemViewers(await obs.nextNamed('item_viewers_changed', (d) => d.item_id === viewed), viewed, f, []);
      expect((await subscribe(obs, f)).viewing_items).toEqual([]);

      // Stopping with nothing viewed is still a success.
      const idle = await t.request({ action: 'stop_item_view', data: { item_id: viewed, folder_id: f } });
      expect(idle).toMatchObject({ type: 'response', status: 'success', action: 'item_view_stopped', item_id: viewed, folder_id: f });
    });

    it('stop_item_view: ids <= 0 count as absent; a folder filter ends only a view in that folder; request_id null when not sent', async () => {
      const g = c.folder();
      const { f, item, t, obs } = await watchedView({ viewerFolders: [g] });

      const zero = await t.request({ action: 'stop_item_view', data: { item_id: 0, folder_id: -1 } });
      expect(zero).toMatchObject({ type: 'response', status: 'success', action: 'item_view_stopped', item_id: null, folder_id: null });
      expectItemViewers(await obs.nextNamed('item_viewers_changed', (d) => d.item_id === item && d.viewers.length === 0), item, f, []);

      await t.request({ action: 'start_item_view', data: { item_id: item } });
      await obs.nextNamed('item_viewers_changed', (d) => d.item_id === item && d.viewers.length === 1);
      const otherFolder = await t.request({ action: 'stop_item_view', data: { folder_id: g } });
      expect(otherFolder).toMatchObject({ type: 'response', status: 'success', action: 'item_view_stopped', item_id: null, folder_id: g });
      await c.barrier([obs]);
      expect(obs.events('item_viewers_changed', (m) => m.data.item_id === item && m.data.viewers.length === 0)).toHaveLength(1);

      t.send({ action: 'stop_item_view', data: { folder_id: f } });
      const bare = await t.next((m) => m.type === 'response' && m.action === 'item_view_stopped');
      expect(bare).toMatchObject({ status: 'success', item_id: null, folder_id: f, request_id: null });
      expectItemViewers(await obs.nextNamed('item_viewers_changed', (d) => d.item_id === item && d.viewers.length === 0), item, f, []);
    });

    it('unsubscribing the folder ends the socket\'s view in that folder', async () => {
      const { f, item, t, obs } = await watchedView({ viewerSubscribes: true });
      // Another folder: the view stays.
      await t.request({ action: 'unsubscribe', channel: 'folder', data: { folder_id: c.folder() } });
      await c.barrier([obs]);
      expect(obs.events('item_viewers_changed', (m) => m.data.item_id === item)).toHaveLength(1);
      await t.request({ action: 'unsubscribe', channel: 'folder', data: { folder_id: f } });
      expectItemViewers(await obs.nextNamed('item_viewers_changed', (d) => d.item_id === item && d.viewers.length === 0), item, f, []);
    });

    it('closing the socket ends its view', async () => {
      const { f, item, t, obs } = await watchedView();
      await t.close();
      expectItemViewers(await obs.nextNamed('item_viewers_changed', (d) => d.item_id === item && d.viewers.length === 0), item, f, []);
    });
  });

  describe('locks on subscribe and renewal (§2.4, §4.2, §11.10)', () => {
    it('subscribe folder: locked_items lists fresh locks (< 300 s) of other users in that folder only', async () => {
      const f = c.folder();
      const g = c.folder();
      const me = await c.user({ folders: [f] });
      const bob = await c.user({ name: 'Bob', lastname: 'Builder' });
      const [fresh, stale, mine, elsewhere] = [await c.item(f), await c.item(f), await c.item(f), await c.item(g)];
      await c.sql.seedItemLock({ itemId: fresh, folderId: f, userId: bob.id, ageSec: 10 });
      await c.sql.seedItemLock({ itemId: stale, folderId: f, userId: bob.id, ageSec: 400 });
      await c.sql.seedItemLock({ itemId: mine, folderId: f, userId: me.id });
      await c.sql.seedItemLock({ itemId: elsewhere, folderId: g, userId: bob.id });
      const t = await open(me);
      const r = await subscribe(t, f);
      expect(r.locked_items).toEqual([{ item_id: fresh, user_login: bob.login, user_display_name: 'Bob Builder' }]);
    });

    it('subscribe kb: locked_kbs lists fresh locks of other users on articles not deleted', async () => {
      const me = await c.user();
      const bob = await c.user({ name: 'Bob', lastname: null });
      const [fresh, stale, gone, mine] = [await c.kb(), await c.kb(), await c.kb({ deleted: true }), await c.kb()];
      await c.sql.seedKbLock({ kbId: fresh, userId: bob.id, ageSec: 10 });
      await c.sql.seedKbLock({ kbId: stale, userId: bob.id, ageSec: 400 });
      await c.sql.seedKbLock({ kbId: gone, userId: bob.id, deleted: true });
      await c.sql.seedKbLock({ kbId: mine, userId: me.id });
      const t = await open(me);
      const r = await subscribeKb(t);
      expect(r).toMatchObject({ type: 'response', status: 'success', action: 'subscribed', channel: 'kb', request_id: r.request_id });
      const ours = new Set([fresh, stale, gone, mine]);
      expect(r.locked_kbs.filter((l: Message) => ours.has(l.kb_id))).toEqual([{ kb_id: fresh, user_login: bob.login, user_display_name: 'Bob' }]);
      expect(Array.isArray(r.viewing_kbs)).toBe(true);
    });

    it('renew_item_lock: an existing lock is renewed (twice within a second too); a missing or foreign lock → no_lock', async () => {
      const f = c.folder();
      const me = await c.user({ folders: [f] });
      const other = await c.user({ folders: [f] });
      const [item, foreign, free] = [await c.item(f), await c.item(f), await c.item(f)];
      await c.sql.seedItemLock({ itemId: item, folderId: f, userId: me.id, ageSec: 100 });
      await c.sql.seedItemLock({ itemId: foreign, folderId: f, userId: other.id });
      const t = await open(me);
      for (let i = 0; i < 2; i++) {
        const r = await t.request({ action: 'renew_item_lock', data: { item_id: item } });
        expect(r).toMatchObject({ type: 'response', status: 'success', action: 'lock_renewed', item_id: item, request_id: r.request_id });
      }
      const [row] = await c.rows<{ ts: string }>('SELECT timestamp AS ts FROM <p>items_edition WHERE item_id = ? AND user_id = ?', [item, me.id]);
      expect(Number(row.ts)).toBeGreaterThanOrEqual(nowSec() - 5);
      for (const id of [free, foreign]) {
        const r = await t.request({ action: 'renew_item_lock', data: { item_id: id } });
        expectHandlerError(r, 'no_lock', 'No active lock found for this item', r.request_id);
      }
      const none = await t.request({ action: 'renew_item_lock', data: {} });
      expectHandlerError(none, 'invalid_request', 'item_id is required', none.request_id);
      t.send({ action: 'renew_item_lock', data: { item_id: free } });
      expectHandlerError(await t.next((m) => m.type === 'error'), 'no_lock', 'No active lock found for this item', null);
    });

    it('renew_kb_lock: renewed, no_lock, kb_id required, admins refused', async () => {
      const me = await c.user();
      const adm = await c.user({ admin: true });
      const [kb, free] = [await c.kb(), await c.kb()];
      await c.sql.seedKbLock({ kbId: kb, userId: me.id, ageSec: 100 });
      await c.sql.seedKbLock({ kbId: free, userId: adm.id });
      const t = await open(me);
      for (let i = 0; i < 2; i++) {
        const r = await t.request({ action: 'renew_kb_lock', data: { kb_id: kb } });
        expect(r).toMatchObject({ type: 'response', status: 'success', action: 'kb_lock_renewed', kb_id: kb, request_id: r.request_id });
      }
      const [row] = await c.rows<{ ts: number }>('SELECT timestamp AS ts FROM <p>kb_edition WHERE kb_id = ? AND user_id = ?', [kb, me.id]);
      expect(Number(row.ts)).toBeGreaterThanOrEqual(nowSec() - 5);
      const miss = await t.request({ action: 'renew_kb_lock', data: { kb_id: free } });
      expectHandlerError(miss, 'no_lock', 'No active lock found for this KB article', miss.request_id);
      const none = await t.request({ action: 'renew_kb_lock', data: {} });
      expectHandlerError(none, 'invalid_request', 'kb_id is required', none.request_id);
      const a = await open(adm);
      const refused = await a.request({ action: 'renew_kb_lock', data: { kb_id: free } });
      expectHandlerError(refused, 'forbidden', 'Access denied to knowledge base', refused.request_id);
    });
  });

  describe('KB views (§4.2 start/stop_kb_view, §5)', () => {
    it('start_kb_view: reply and kb_viewers_changed to KB subscribers; two users, de-duplicated; viewing_kbs on subscribe', async () => {
      const alice = await c.user();
      const bob = await c.user();
      const carol = await c.user();
      const kb = await c.kb();
      const a1 = await open(alice);
      const a2 = await open(alice);
      const b = await open(bob);
      await subscribeKb(a1);
      await subscribeKb(b);
      const r = await a1.request({ action: 'start_kb_view', data: { kb_id: kb } });
      expect(r).toMatchObject({ type: 'response', status: 'success', action: 'kb_view_started', kb_id: kb, request_id: r.request_id });
      expect(r.viewers).toEqual([viewer(alice)]);
      expectKbViewers(await b.nextNamed('kb_viewers_changed', (d) => d.kb_id === kb), kb, [alice]);
      expect((await a2.request({ action: 'start_kb_view', data: { kb_id: kb } })).viewers).toEqual([viewer(alice)]);
      const rb = await b.request({ action: 'start_kb_view', data: { kb_id: kb } });
      expect(sortedViewers(rb.viewers)).toEqual(sortedOf([alice, bob]));
      expectKbViewers(await a1.nextNamed('kb_viewers_changed', (d) => d.kb_id === kb && d.viewers.length === 2), kb, [alice, bob]);
      const cTab = await open(carol);
      const s = await subscribeKb(cTab);
      const entry = s.viewing_kbs.find((v: Message) => v.kb_id === kb);
      expect(entry).toBeDefined();
      expect(sortedViewers(entry.viewers)).toEqual(sortedOf([alice, bob]));
    });

    it('start_kb_view: kb_id required; a missing or deleted article → not_found; admins refused', async () => {
      const u = await c.user();
      const adm = await c.user({ admin: true });
      const gone = await c.kb({ deleted: true });
      const kb = await c.kb();
      const t = await open(u);
      const none = await t.request({ action: 'start_kb_view', data: {} });
      expectHandlerError(none, 'invalid_request', 'kb_id is required', none.request_id);
      for (const id of [99_999_999, gone]) {
        const r = await t.request({ action: 'start_kb_view', data: { kb_id: id } });
        expectHandlerError(r, 'not_found', 'KB article not found', r.request_id);
      }
      const a = await open(adm);
      const refused = await a.request({ action: 'start_kb_view', data: { kb_id: kb } });
      expectHandlerError(refused, 'forbidden', 'Access denied to knowledge base', refused.request_id);
      // The access check comes before the existence check.
      const refusedMissing = await a.request({ action: 'start_kb_view', data: { kb_id: 99_999_999 } });
      expectHandlerError(refusedMissing, 'forbidden', 'Access denied to knowledge base', refusedMissing.request_id);
      // stop_kb_view has no access check.
      expect(await a.request({ action: 'stop_kb_view', data: { kb_id: kb } })).toMatchObject({ type: 'response', status: 'success', action: 'kb_view_stopped', kb_id: kb });
    });

    it('stop_kb_view, unsubscribing the KB and closing the socket each end the KB view', async () => {
      const u = await c.user();
      const o = await c.user();
      const kb = await c.kb();
      const t = await open(u);
      const obs = await open(o);
      await subscribeKb(obs);
      const gone = (n: number) => obs.nextNamed('kb_viewers_changed', (d) => d.kb_id === kb && d.viewers.length === 0).then((m) => { expectKbViewers(m, kb, []); return n; });

      await t.request({ action: 'start_kb_view', data: { kb_id: kb } });
      await obs.nextNamed('kb_viewers_changed', (d) => d.kb_id === kb && d.viewers.length === 1);
      const stop = await t.request({ action: 'stop_kb_view', data: { kb_id: kb } });
      expect(stop).toMatchObject({ type: 'response', status: 'success', action: 'kb_view_stopped', kb_id: kb, request_id: stop.request_id });
      await gone(1);
      const bare = await t.request({ action: 'stop_kb_view' });
      expect(bare).toMatchObject({ type: 'response', status: 'success', action: 'kb_view_stopped', kb_id: null });

      await subscribeKb(t);
      await t.request({ action: 'start_kb_view', data: { kb_id: kb } });
      await obs.nextNamed('kb_viewers_changed', (d) => d.kb_id === kb && d.viewers.length === 1);
      await t.request({ action: 'unsubscribe', channel: 'kb', data: {} });
      await gone(2);

      await t.request({ action: 'start_kb_view', data: { kb_id: kb } });
      await obs.nextNamed('kb_viewers_changed', (d) => d.kb_id === kb && d.viewers.length === 1);
      await t.close();
      await gone(3);
    });
  });

  describe('lock release after the last socket closes (§5 "On close", §11.17, grace period)', () => {
    let observer: Tab;
    let f: number;

    beforeAll(async () => {
      f = c.folder();
      const o = await c.user({ folders: [f] });
      observer = await open(o);
      await subscribe(observer, f);
      await subscribeKb(observer);
    });

    const itemLocks = async (userId: number) => (await c.rows('SELECT item_id FROM <p>items_edition WHERE user_id = ?', [userId])).length;
    const kbLocks = async (userId: number) => (await c.rows('SELECT kb_id FROM <p>kb_edition WHERE user_id = ?', [userId])).length;

    it('released after the grace: rows deleted, item_edition_stopped / kb_edition_stopped with reason "disconnected", journaled', async () => {
      const e = await c.user({ name: 'Eve', lastname: 'Editor', folders: [f] });
      const keeper = await c.user({ folders: [f] });
      const item = await c.item(f);
      const keptItem = await c.item(f);
      const kb = await c.kb();
      await c.sql.seedItemLock({ itemId: item, folderId: f, userId: e.id });
      await c.sql.seedKbLock({ kbId: kb, userId: e.id });
      await c.sql.seedItemLock({ itemId: keptItem, folderId: f, userId: keeper.id });
      const t = await open(e);
      await t.close();
      const closedAt = Date.now();
      // Not at once: the grace period runs first.
      expect(await itemLocks(e.id)).toBe(1);
      expect(await kbLocks(e.id)).toBe(1);

      const stopped = await observer.nextNamed('item_edition_stopped', (d) => d.item_id === item, 5000);
      expect(Date.now() - closedAt).toBeGreaterThanOrEqual(GRACE_MS - 50);
      expect(stopped).toMatchObject({ type: 'event', event: 'item_edition_stopped' });
      expect(stopped.data).toMatchObject({
        item_id: item, folder_id: f, user_login: e.login, user_display_name: 'Eve Editor', user_id: e.id, reason: 'disconnected',
      });
      expect(Number.isInteger(stopped.data.server_timestamp)).toBe(true);
      expect(Number.isInteger(stopped.timestamp)).toBe(true);
      const kbStopped = await observer.nextNamed('kb_edition_stopped', (d) => d.kb_id === kb, 5000);
      expect(kbStopped.data).toMatchObject({ kb_id: kb, user_login: e.login, user_display_name: 'Eve Editor', user_id: e.id, reason: 'disconnected' });
      expect(kbStopped.data).not.toHaveProperty('folder_id');
      expect(Number.isInteger(kbStopped.data.server_timestamp)).toBe(true);

      expect(await itemLocks(e.id)).toBe(0);
      expect(await kbLocks(e.id)).toBe(0);
      expect(await itemLocks(keeper.id)).toBe(1);

      // Through the normal event path: journaled, processed = 1, with an event id.
      await until(async () => (await c.rows(
        `SELECT id FROM <p>websocket_events WHERE event_type IN ('item_edition_stopped', 'kb_edition_stopped') AND processed = 1 AND event_uuid IS NOT NULL AND JSON_VALUE(payload, '$.user_id') = ?`,
        [e.id])).length === 2, 'both release events journaled');
      const rows = await c.rows<{ event_type: string; target_type: string; target_id: number | null; payload: unknown }>(
        `SELECT event_type, target_type, target_id, payload FROM <p>websocket_events WHERE JSON_VALUE(payload, '$.user_id') = ? ORDER BY event_type`, [e.id]);
      expect(rows.map((r) => [r.event_type, r.target_type, r.target_id === null ? null : Number(r.target_id)])).toEqual([
        ['item_edition_stopped', 'folder', f],
        ['kb_edition_stopped', 'kb', null],
      ]);
      expect(asJson(rows[0].payload)).toMatchObject({ item_id: item, folder_id: f, user_id: e.id, user_login: e.login, reason: 'disconnected' });
      expect(asJson(rows[1].payload)).toMatchObject({ kb_id: kb, user_id: e.id, user_login: e.login, reason: 'disconnected' });
    });

    it('one event per lock, each to the folder of its item', async () => {
      const g = c.folder();
      const watcher = await open(await c.user({ admin: true }));
      await subscribe(watcher, f);
      await subscribe(watcher, g);
      const e = await c.user({ folders: [f, g] });
      const [i1, i2, i3] = [await c.item(f), await c.item(f), await c.item(g)];
      for (const [itemId, folderId] of [[i1, f], [i2, f], [i3, g]]) await c.sql.seedItemLock({ itemId, folderId, userId: e.id });
      const t = await open(e);
      await t.close();
      for (const [itemId, folderId] of [[i1, f], [i2, f], [i3, g]]) {
        const m = await watcher.nextNamed('item_edition_stopped', (d) => d.item_id === itemId);
        expect(m.data).toMatchObject({ item_id: itemId, folder_id: folderId, user_id: e.id, reason: 'disconnected' });
      }
      await c.barrier([watcher]);
      expect(watcher.events('item_edition_stopped', (m) => m.data.user_id === e.id)).toHaveLength(3);
      expect(await itemLocks(e.id)).toBe(0);
    });

    it('only when the LAST socket closes', async () => {
      const e = await c.user({ folders: [f] });
      const item = await c.item(f);
      await c.sql.seedItemLock({ itemId: item, folderId: f, userId: e.id });
      const t1 = await open(e);
      const t2 = await open(e);
      await t1.close();
      // Proving an absence: wait out twice the grace period, then a barrier for anything in flight.
      await sleep(GRACE_MS * 2);
      await c.barrier([observer]);
      expect(await itemLocks(e.id)).toBe(1);
      expect(observer.events('item_edition_stopped', (m) => m.data.item_id === item)).toEqual([]);
      await t2.close();
      await observer.nextNamed('item_edition_stopped', (d) => d.item_id === item && d.reason === 'disconnected');
      expect(await itemLocks(e.id)).toBe(0);
    });

    it('not released when the user reconnects within the grace period', async () => {
      const e = await c.user({ folders: [f] });
      const item = await c.item(f);
      const kb = await c.kb();
      await c.sql.seedItemLock({ itemId: item, folderId: f, userId: e.id });
      await c.sql.seedKbLock({ kbId: kb, userId: e.id });
      const first = await c.tab(e.token);
      await first.tab.close();
      // A page navigation: the next page's socket, with the reconnect token, well within the grace.
      const second = await c.tab(first.connected.reconnect_token);
      await sleep(GRACE_MS * 2);
      await c.barrier([observer]);
      expect(await itemLocks(e.id)).toBe(1);
      expect(await kbLocks(e.id)).toBe(1);
      expect(observer.events('item_edition_stopped', (m) => m.data.item_id === item)).toEqual([]);
      expect(observer.events('kb_edition_stopped', (m) => m.data.kb_id === kb)).toEqual([]);
      // The release is cancelled, not postponed: closing again starts a new grace period.
      await second.tab.close();
      await observer.nextNamed('item_edition_stopped', (d) => d.item_id === item);
      await observer.nextNamed('kb_edition_stopped', (d) => d.kb_id === kb);
    });

    it('with misc websocket_enabled = "0" the locks are deleted but no event is emitted', async () => {
      const e = await c.user({ folders: [f] });
      const item = await c.item(f);
      await c.sql.seedItemLock({ itemId: item, folderId: f, userId: e.id });
      await c.sql.seedMisc({ websocket_enabled: '0' });
      try {
        const t = await open(e);
        await t.close();
        await until(async () => (await itemLocks(e.id)) === 0, 'the lock to be deleted', 5000);
        await c.barrier([observer]);
        expect(observer.events('item_edition_stopped', (m) => m.data.item_id === item)).toEqual([]);
        expect(await c.rows(`SELECT id FROM <p>websocket_events WHERE event_type = 'item_edition_stopped' AND JSON_VALUE(payload, '$.user_id') = ?`, [e.id])).toEqual([]);
      } finally {
        await c.sql.seedMisc({ websocket_enabled: '1' });
      }
    });

    it('without a misc websocket_enabled row the events are emitted', async () => {
      const e = await c.user({ folders: [f] });
      const item = await c.item(f);
      await c.sql.seedItemLock({ itemId: item, folderId: f, userId: e.id });
      await c.sql.execSql("DELETE FROM teampass_misc WHERE intitule = 'websocket_enabled'");
      try {
        const t = await open(e);
        await t.close();
        const m = await observer.nextNamed('item_edition_stopped', (d) => d.item_id === item);
        expect(m.data).toMatchObject({ item_id: item, folder_id: f, user_id: e.id, reason: 'disconnected' });
      } finally {
        await c.sql.seedMisc({ websocket_enabled: '1' });
      }
    });
  });

  describe('misc enable_kb (§2.3, §5)', () => {
    it('with enable_kb = "0" the KB channel, KB views and KB lock renewal are refused', async () => {
      const u = await c.user();
      const kb = await c.kb();
      await c.sql.seedKbLock({ kbId: kb, userId: u.id });
      const t = await open(u);
      await c.sql.seedMisc({ enable_kb: '0' });
      try {
        for (const m of [
          { action: 'subscribe', channel: 'kb', data: {} },
          { action: 'start_kb_view', data: { kb_id: kb } },
          { action: 'renew_kb_lock', data: { kb_id: kb } },
        ]) {
          const r = await t.request(m);
          expectHandlerError(r, 'forbidden', 'Access denied to knowledge base', r.request_id);
        }
      } finally {
        await c.sql.seedMisc({ enable_kb: '1' });
      }
      expect((await subscribeKb(t)).action).toBe('subscribed');
    });
  });

});
