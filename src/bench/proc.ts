/**
 * What a benchmark reads about a process from Linux's /proc: CPU seconds
 * (utime + stime) and resident memory (VmRSS), and a sampler that keeps the
 * peak RSS over a window. Daemon figures come from here rather than from the
 * daemon itself, so the measurement costs the daemon nothing and works for
 * any server (tp-ws or a floor server).
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

let ticks: number | null = null;

/** Clock ticks per second of /proc/<pid>/stat times (`getconf CLK_TCK`; 100 on Linux). */
export function clockTicks(): number {
  if (ticks === null) {
    let n = NaN;
    try {
      n = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
    } catch {
      // getconf missing: Linux has used 100 on every architecture for decades.
    }
    ticks = Number.isInteger(n) && n > 0 ? n : 100;
  }
  return ticks;
}

/**
 * CPU seconds (user + system) `pid` has used so far. Throws when the process
 * is gone. The command name in /proc/<pid>/stat may hold spaces and
 * parentheses, so fields are counted from the last `)`.
 */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // rest[0] is field 3 (state); utime and stime are fields 14 and 15.
  const utime = Number(rest[11]);
  const stime = Number(rest[12]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) throw new Error(`unreadable /proc/${pid}/stat`);
  return (utime + stime) / clockTicks();
}

/**
 * CPU seconds the threads of `pid` alive now have run, from the scheduler's
 * own accounting (`/proc/<pid>/task/<tid>/schedstat`, nanoseconds). Precise
 * where `cpuSeconds` counts clock ticks: an idle daemon wakes for well under
 * a tick, so ticks over- or under-charge it by whole ticks. Threads that
 * exited are not counted.
 */
export function runtimeSeconds(pid: number): number {
  let ns = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      // the thread exited between the listing and the read
    }
  }
  return ns / 1e9;
}

/** Resident set size of `pid` in bytes (VmRSS); throws when the process is gone. */
export function rssBytes(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (m === null) throw new Error(`no VmRSS in /proc/${pid}/status`);
  return Number(m[1]) * 1024;
}

/** Soft limit of open files of `pid` (from /proc/<pid>/limits); null when unlimited or unreadable. */
export function fdSoftLimit(pid: number): number | null {
  try {
    const m = /^Max open files\s+(\d+|unlimited)/m.exec(readFileSync(`/proc/${pid}/limits`, 'utf8'));
    return m === null || m[1] === 'unlimited' ? null : Number(m[1]);
  } catch {
    return null;
  }
}

/** CPU seconds (user + system) of this process so far: the load generator's own cost. */
export function ownCpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

/** CPU used by a process over a window. */
export class CpuWindow {
  readonly #pid: number;
  readonly #cpu0: number;
  readonly #t0 = process.hrtime.bigint();
  readonly #read: (pid: number) => number;

  /** `clock`: `ticks` (/proc/PID/stat, the default) or `schedstat` (`runtimeSeconds`, for idle processes). */
  constructor(pid: number, clock: 'ticks' | 'schedstat' = 'ticks') {
    this.#pid = pid;
    this.#read = clock === 'ticks' ? cpuSeconds : runtimeSeconds;
    this.#cpu0 = this.#read(pid);
  }

  /** CPU seconds since the window opened, the wall seconds it lasted, and their ratio (1 = one core busy). */
  read(): { cpu_s: number; wall_s: number; cores: number } {
    const cpu = this.#read(this.#pid) - this.#cpu0;
    const wall = Number(process.hrtime.bigint() - this.#t0) / 1e9;
    return { cpu_s: round3(cpu), wall_s: round3(wall), cores: round3(wall > 0 ? cpu / wall : 0) };
  }
}

/**
 * Peak RSS of a process over a window, sampled every `intervalMs` (50 ms by
 * default; a burst that lasts seconds is seen at every step). The timer is
 * unref'd so it never keeps a benchmark alive.
 */
export class PeakRssSampler {
  readonly #pid: number;
  #timer: NodeJS.Timeout | null = null;
  #peak = 0;
  #samples = 0;

  constructor(pid: number, readonly intervalMs = 50) {
    this.#pid = pid;
  }

  start(): this {
    this.#sample();
    this.#timer = setInterval(() => this.#sample(), this.intervalMs);
    this.#timer.unref();
    return this;
  }

  /** Stop sampling (one last sample first) and return the peak seen. */
  stop(): { peak_bytes: number; samples: number } {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
    this.#sample();
    return { peak_bytes: this.#peak, samples: this.#samples };
  }

  #sample(): void {
    try {
      this.#peak = Math.max(this.#peak, rssBytes(this.#pid));
      this.#samples++;
    } catch {
      // The process exited; its peak so far stands.
    }
  }
}

/** Busy and total clock ticks of the whole machine so far (first line of /proc/stat). */
function machineTicks(): { busy: number; total: number } {
  const f = readFileSync('/proc/stat', 'utf8').slice(0, 256).split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal …: idle and iowait are not busy.
  const total = f.slice(0, 8).reduce((a, b) => a + b, 0);
  return { busy: total - f[3] - f[4], total };
}

/**
 * How busy the whole machine was over a window, in cores (2 = both cores of
 * this machine busy). On a shared machine this is what tells a slow run from
 * a slow daemon: when others used the cores, the daemon waited, and its CPU
 * seconds stay low while the wall time grows.
 */
export class MachineWindow {
  readonly #t0 = machineTicks();
  readonly #load0 = loadAverage();

  read(): { busy_cores: number; cores: number; loadavg_1m: [number, number] } {
    const t = machineTicks();
    const cores = cpuCount();
    const dt = t.total - this.#t0.total;
    return { busy_cores: round3(dt > 0 ? ((t.busy - this.#t0.busy) / dt) * cores : 0), cores, loadavg_1m: [this.#load0, loadAverage()] };
  }
}

function loadAverage(): number {
  return Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0]);
}

function cpuCount(): number {
  return (readFileSync('/proc/stat', 'utf8').match(/^cpu\d+ /gm) ?? []).length || 1;
}

const round3 = (x: number) => Math.round(x * 1000) / 1000;

/** Bytes as MB with one decimal, for reports. */
export const mb = (bytes: number) => Math.round(bytes / 1e5) / 10;
