/**
 * Pluggable authentication of a WebSocket upgrade's `?token=` value. The
 * gateway tries the configured authenticators in order; the first to return
 * an identity wins. An authenticator returns null for a token it does not
 * accept (wrong shape, unknown, expired) and throws only when it could not
 * decide (store down) — the gateway then answers `auth_failed` as well, but
 * logs the cause at error level.
 */
export interface Identity {
  userId: number;
  login: string;
  displayName: string;
  isAdmin: boolean;
  /** Folder ids the user may subscribe to (admins: any). Never changed in place: may be shared (FolderSets); an access change assigns a new set. */
  folders: ReadonlySet<number>;
  /** TeamPass `auth_method` label shown by `get_status`. */
  authMethod: 'ws_token' | 'jwt';
  /** Epoch ms after which the socket must be closed (JWT `exp`); null when the credential does not expire while connected. */
  expiresAt: number | null;
  /** Token to hand back in `connected.reconnect_token` (TeamPass tokens only). */
  reconnectToken: string | null;
}

export interface Authenticator {
  readonly name: string;
  authenticate(token: string): Promise<Identity | null>;
}

/** TeamPass display name: "name lastname", whitespace collapsed, else the login (docs/protocol.md §Authentication). */
export function displayName(login: string, name: string | null | undefined, lastname: string | null | undefined): string {
  const full = `${name ?? ''} ${lastname ?? ''}`.replace(/\s+/g, ' ').trim();
  return full === '' ? login : full;
}
