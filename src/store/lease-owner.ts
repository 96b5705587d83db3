/**
 * Owner ids of the SQLite poller lease (`<prefix>tpws_lease`), which say
 * which process holds it, so that a daemon restarted after a SIGKILL can
 * take the lease its dead predecessor never gave up at once, instead of
 * leaving the rows written meanwhile undelivered until the lease lapses
 * (15 s; measured by the resume-restart benchmark and the SIGKILL-under-load
 * test: rows waited 10-13 s).
 *
 * An id is `<host>/<pid namespace>/<pid>/<random>`. The random part tells
 * two stores of one process apart. Only a holder of this host and this PID
 * namespace can be checked, with `kill(pid, 0)`.
 */
import { randomBytes } from 'node:crypto';
import { readlinkSync } from 'node:fs';
import { hostname } from 'node:os';

/** This process's PID namespace (`pid:[4026531836]` on Linux), or null where there is no /proc to say. */
function pidNamespace(): string | null {
  try {
    return readlinkSync('/proc/self/ns/pid');
  } catch {
    return null;
  }
}

/** A new owner id for a store of this process. */
export function leaseOwner(): string {
  return `${hostname()}/${pidNamespace() ?? '-'}/${process.pid}/${randomBytes(8).toString('hex')}`;
}

/**
 * True only when `owner` is certainly a process that no longer exists: one
 * of this host and PID namespace whose pid is gone (`ESRCH`). False for
 * anything that cannot be known: another host or namespace (a container on
 * a shared volume), no /proc, an owner id without these parts (written by
 * an older version), a pid that exists (alive, or reused since — then the
 * lease lapses as before), or this process itself (a second store in it).
 */
export function ownerIsGone(owner: string): boolean {
  const ns = pidNamespace();
  if (ns === null) return false;
  const parts = owner.split('/');
  if (parts.length < 4) return false;
  const host = parts.slice(0, -3).join('/');
  const [nsText, pidText] = parts.slice(-3, -1);
  if (host !== hostname() || nsText !== ns || !/^[1-9]\d{0,9}$/.test(pidText)) return false;
  const pid = Number(pidText);
  if (pid === process.pid) return false;
  try {
    process.kill(pid, 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
}
