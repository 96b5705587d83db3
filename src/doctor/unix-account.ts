/**
 * Unix accounts and file permissions as the kernel applies them, for "can
 * the PHP user connect to the ingest socket?": a user's uid and groups from
 * /etc/passwd and /etc/group, and the owner/group/other class a file's mode
 * bits are taken from for that user. ACLs are not read (`getfacl` shows
 * them); the doctor says so when it finds a block.
 */
import { readFileSync } from 'node:fs';

export interface UnixGroup {
  name: string;
  gid: number;
}

export interface UnixAccount {
  name: string;
  uid: number;
  /** Primary group first, then supplementary groups from /etc/group. */
  groups: UnixGroup[];
}

/** Where accounts are read from; tests and other systems may pass their own. */
export interface AccountFiles {
  passwd: string;
  group: string;
}

const SYSTEM_FILES: AccountFiles = { passwd: '/etc/passwd', group: '/etc/group' };

function readLines(path: string): string[][] {
  try {
    return readFileSync(path, 'utf8').split('\n').filter((l) => l !== '' && !l.startsWith('#')).map((l) => l.split(':'));
  } catch {
    return [];
  }
}

/** A group's name by gid, else the gid as text. */
export function groupName(gid: number, files: AccountFiles = SYSTEM_FILES): string {
  return readLines(files.group).find((f) => Number(f[2]) === gid)?.[0] ?? String(gid);
}

/** A user's name by uid, else the uid as text. */
export function userName(uid: number, files: AccountFiles = SYSTEM_FILES): string {
  return readLines(files.passwd).find((f) => Number(f[2]) === uid)?.[0] ?? String(uid);
}

/** A group's gid by name (or a numeric gid as is), or null. */
export function groupId(name: string, files: AccountFiles = SYSTEM_FILES): number | null {
  if (/^\d+$/.test(name)) return Number(name);
  const f = readLines(files.group).find((g) => g[0] === name);
  return f === undefined ? null : Number(f[2]);
}

/**
 * An account by name (or numeric uid) with its primary and supplementary
 * groups, or null when /etc/passwd has no such user.
 */
export function lookupAccount(user: string, files: AccountFiles = SYSTEM_FILES): UnixAccount | null {
  const pw = readLines(files.passwd).find((f) => f[0] === user || (/^\d+$/.test(user) && f[2] === user));
  if (pw === undefined) return null;
  const primary = Number(pw[3]);
  const groups: UnixGroup[] = [];
  const groupLines = readLines(files.group);
  const primaryLine = groupLines.find((g) => Number(g[2]) === primary);
  groups.push({ name: primaryLine?.[0] ?? String(primary), gid: primary });
  for (const g of groupLines) {
    const members = (g[3] ?? '').split(',').map((m) => m.trim());
    if (members.includes(pw[0]) && !groups.some((x) => x.gid === Number(g[2]))) groups.push({ name: g[0], gid: Number(g[2]) });
  }
  return { name: pw[0], uid: Number(pw[2]), groups };
}

/** The permission bit asked for: search a directory, write (connect to) a socket. */
export type Access = 'x' | 'w';

/** Which class of the mode bits applies to `account`, and whether it grants `access`. */
export function accessFor(account: UnixAccount, st: { mode: number; uid: number; gid: number }, access: Access): { granted: boolean; via: 'root' | 'owner' | 'group' | 'other' } {
  if (account.uid === 0) return { granted: true, via: 'root' };
  const bit = access === 'x' ? 1 : 2;
  // The kernel takes the first class that matches, even when a later one would grant more.
  if (account.uid === st.uid) return { granted: (st.mode & (bit << 6)) !== 0, via: 'owner' };
  if (account.groups.some((g) => g.gid === st.gid)) return { granted: (st.mode & (bit << 3)) !== 0, via: 'group' };
  return { granted: (st.mode & bit) !== 0, via: 'other' };
}

/** `drwxr-x---`-style text of a mode (file type letter from `isDir`/`isSocket`). */
export function modeText(mode: number, type: 'd' | 's' | '-'): string {
  const bits = 'rwxrwxrwx';
  let out = type;
  for (let i = 0; i < 9; i++) out += mode & (1 << (8 - i)) ? bits[i] : '-';
  return out;
}

/** `0660`-style octal text of the permission bits. */
export function octal(mode: number): string {
  return `0${(mode & 0o777).toString(8).padStart(3, '0')}`;
}
