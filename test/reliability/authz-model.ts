/**
 * The reference model of the authorization property test
 * (authz-property.test.ts), written from docs/protocol.md (§Authentication,
 * §subscribe, §Events routing, §Access changes, §Resume), not from the
 * daemon's code. It holds the TeamPass tables as the test wrote them, every
 * socket's access as the daemon must know it, and the subscriptions; fed the
 * stream of events in the order the daemon fans them out, it says which
 * socket must receive which event, and nothing else.
 */

export type TargetType = 'user' | 'folder' | 'kb' | 'broadcast';

/** One event of the stream, as sent. */
export interface StreamEvent {
  /** `data.pt` of the event: how the test recognises it on a socket. */
  key: string;
  type: string;
  target: TargetType;
  targetId: number | null;
  /** exclude_user_id; 0 or null excludes nobody. */
  exclude: number | null;
  /** The test step that sent it, and how (for a failure report). */
  step: number;
  via: 'ingest' | 'table';
}

/** What a user may read, as at login (§Authentication): null when the user may not log in. */
export interface Access {
  admin: boolean;
  folders: ReadonlySet<number>;
}

/** TeamPass's tables, as the test wrote them. */
export class TeampassTables {
  readonly admin = new Set<number>();
  readonly disabled = new Set<number>();
  /** users_groups: user → folders granted directly. */
  readonly groups = new Map<number, Set<number>>();
  /** roles_values: role → folders. */
  readonly roleFolders = new Map<number, Set<number>>();
  /** users_roles: user → roles. */
  readonly userRoles = new Map<number, Set<number>>();

  constructor(readonly users: readonly number[]) {
    for (const u of users) {
      this.groups.set(u, new Set());
      this.userRoles.set(u, new Set());
    }
  }

  /** §Authentication: users_groups ∪ the folders of the user's roles; admin = users.admin; disabled users cannot log in. */
  access(user: number): Access | null {
    if (!this.users.includes(user) || this.disabled.has(user)) return null;
    const folders = new Set(this.groups.get(user));
    for (const r of this.userRoles.get(user) ?? []) for (const f of this.roleFolders.get(r) ?? []) folders.add(f);
    return { admin: this.admin.has(user), folders };
  }

  /** Users holding `role`. */
  usersOfRole(role: number): number[] {
    return this.users.filter((u) => this.userRoles.get(u)?.has(role));
  }
}

/** One socket in the model. */
export class ModelSocket {
  open = true;
  admin: boolean;
  folders: ReadonlySet<number>;
  readonly subs = new Set<number>();
  kb = false;
  /** Keys of the events it must receive, in order. */
  readonly expected: string[] = [];
  /** Stream index after the last position it was given (`connected`, an event): where a resume from it starts. */
  position: number;

  constructor(readonly id: number, readonly user: number, access: Access, streamLength: number) {
    this.admin = access.admin;
    this.folders = access.folders;
    this.position = streamLength;
  }

  /** §subscribe: admins any folder id, others their folders as of the last access read. */
  mayReadFolder(folder: number): boolean {
    return this.admin || this.folders.has(folder);
  }

  /** §subscribe: the KB channel is refused to admins (misc enable_kb is 1 in the test). */
  get mayReadKb(): boolean {
    return !this.admin;
  }
}

/** The model: tables, sockets, and the stream fanned out so far. */
export class AuthzModel {
  readonly stream: StreamEvent[] = [];
  readonly sockets: ModelSocket[] = [];
  /** Access re-reads applied (per socket), subscriptions they ended. */
  rereads = 0;
  revoked = 0;

  constructor(readonly tables: TeampassTables) {}

  open(): ModelSocket[] {
    return this.sockets.filter((s) => s.open);
  }

  /** A login: the access of the tables now; null when refused (§Authentication). */
  connect(id: number, user: number): ModelSocket | null {
    const a = this.tables.access(user);
    if (a === null) return null;
    const s = new ModelSocket(id, user, a, this.stream.length);
    this.sockets.push(s);
    return s;
  }

  /** §Events routing table, with the socket's subscriptions at this point of the stream. */
  entitled(s: ModelSocket, e: StreamEvent): boolean {
    switch (e.target) {
      case 'user':
        return e.targetId === s.user;
      case 'folder':
        return s.user !== e.exclude && e.targetId !== null && s.subs.has(e.targetId) && s.mayReadFolder(e.targetId);
      case 'kb':
        return s.user !== e.exclude && s.kb;
      case 'broadcast':
        return s.user !== e.exclude;
    }
  }

  /**
   * One event fanned out: its recipients get it; then a
   * `folder_permission_changed` re-reads the access of its user (user target)
   * or of every user who received it (folder target), which applies to every
   * event after it (§Access changes).
   */
  deliver(e: StreamEvent): ModelSocket[] {
    this.stream.push(e);
    const to = this.open().filter((s) => this.entitled(s, e));
    for (const s of to) {
      s.expected.push(e.key);
      s.position = this.stream.length;
    }
    if (e.type === 'folder_permission_changed') {
      const users = e.target === 'user' ? (e.targetId === null ? [] : [e.targetId]) : e.target === 'folder' ? [...new Set(to.map((s) => s.user))] : [];
      for (const u of users) this.reread(u);
    }
    return to;
  }

  /** §Access changes: every socket of the user takes the access of the tables now; subscriptions it no longer allows end. A user no longer enabled keeps no folder. */
  reread(user: number): void {
    const a = this.tables.access(user) ?? { admin: false, folders: new Set<number>() };
    for (const s of this.open()) {
      if (s.user !== user) continue;
      this.rereads++;
      s.admin = a.admin;
      s.folders = a.folders;
      for (const f of [...s.subs]) {
        if (s.mayReadFolder(f)) continue;
        s.subs.delete(f);
        this.revoked++;
      }
    }
  }

  /**
   * §Resume: `s` (just connected) asks for `folders` and the KB from the
   * position of `from`. It is subscribed to the folders it may read now,
   * and gets every event after that position it may receive now.
   */
  resume(s: ModelSocket, from: number, folders: readonly number[], kb: boolean): { folders: number[]; denied: number[]; kb: boolean; replayed: StreamEvent[] } {
    const granted = folders.filter((f) => s.mayReadFolder(f));
    for (const f of granted) s.subs.add(f);
    s.kb = kb && s.mayReadKb;
    const replayed = this.stream.slice(from).filter((e) => this.entitled(s, e));
    for (const e of replayed) s.expected.push(e.key);
    s.position = this.stream.length;
    return { folders: granted, denied: folders.filter((f) => !s.mayReadFolder(f)), kb: s.kb, replayed };
  }
}
