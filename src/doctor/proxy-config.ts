/**
 * The reverse proxy's read timeout for tp-ws's location, from the local
 * web server's configuration: nginx through `nginx -T` (of each running
 * master, with its own `-c`/`-p`, else the default configuration), Apache
 * from its configuration files. A proxy closes a WebSocket on which nothing
 * arrived from upstream for that long, so it must exceed the server's ping
 * interval. Nothing here hangs: every command has a timeout, every file
 * read is bounded.
 */
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, isAbsolute, join } from 'node:path';

/** One place that proxies to tp-ws's port, and its read timeout. */
export interface ProxyTimeout {
  server: 'nginx' | 'apache';
  /** The timeout in seconds. */
  seconds: number;
  /** Where it is set (`file:line`), or how it was derived (`nginx default`). */
  source: string;
  /** What proxies: `location /ws in server listening on 443`, `ProxyPass /ws (file:line)`. */
  proxies: string;
  /** Whether the front listens on the port the client used (`--proxy-url`). */
  onProxyPort: boolean;
}

/** What was found: the proxying places, or why none could be read. */
export interface ProxyTimeoutResult {
  found: ProxyTimeout[];
  /** Reasons nothing (or not everything) could be determined, for the report. */
  notes: string[];
}

const MAX_FILE_BYTES = 1_000_000;
const MAX_FILES = 300;

/** nginx time: `60`, `60s`, `1h`, `1h30m`, `500ms` → seconds; null when malformed. */
export function nginxSeconds(text: string): number | null {
  const units: Record<string, number> = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86_400, w: 604_800, M: 2_592_000, y: 31_536_000 };
  if (!/^(\d+(ms|s|m|h|d|w|M|y)?)+$/.test(text)) return null;
  let total = 0;
  for (const m of text.matchAll(/(\d+)(ms|s|m|h|d|w|M|y)?/g)) total += Number(m[1]) * units[m[2] ?? 's'];
  return total;
}

// ---------------------------------------------------------------- nginx --

/** One nginx directive, with its block when it has one. */
export interface NginxDirective {
  name: string;
  args: string[];
  file: string;
  line: number;
  block: NginxDirective[] | null;
}

/** Parses nginx configuration text (comments, quotes, escapes, blocks) into directives. */
export function parseNginx(text: string, file: string): NginxDirective[] {
  const root: NginxDirective[] = [];
  const stack: NginxDirective[][] = [root];
  let words: string[] = [];
  let startLine = 1;
  let line = 1;
  let i = 0;
  const push = (block: NginxDirective[] | null): void => {
    if (words.length > 0) stack[stack.length - 1].push({ name: words[0], args: words.slice(1), file, line: startLine, block });
    words = [];
  };
  while (i < text.length) {
    const c = text[i];
    if (c === '\n') {
      line++;
      i++;
    } else if (c === ' ' || c === '\t' || c === '\r') {
      i++;
    } else if (c === '#') {
      while (i < text.length && text[i] !== '\n') i++;
    } else if (c === ';') {
      push(null);
      i++;
    } else if (c === '{') {
      const block: NginxDirective[] = [];
      push(block);
      stack.push(block);
      i++;
    } else if (c === '}') {
      words = [];
      if (stack.length > 1) stack.pop();
      i++;
    } else {
      if (words.length === 0) startLine = line;
      let word = '';
      if (c === '"' || c === "'") {
        i++;
        while (i < text.length && text[i] !== c) {
          if (text[i] === '\\' && i + 1 < text.length) i++;
          if (text[i] === '\n') line++;
          word += text[i++];
        }
        i++;
      } else {
        while (i < text.length && !/[\s;{}]/.test(text[i])) {
          if (text[i] === '\\' && i + 1 < text.length) i++;
          word += text[i++];
        }
      }
      words.push(word);
    }
  }
  return root;
}

/** `nginx -T` output split into its files (`# configuration file PATH:` headers), in order. */
export function splitNginxDump(dump: string): Map<string, string> {
  const files = new Map<string, string>();
  let current: string | null = null;
  let lines: string[] = [];
  for (const l of dump.split('\n')) {
    const m = /^# configuration file (.+):$/.exec(l);
    if (m !== null) {
      if (current !== null) files.set(current, lines.join('\n'));
      current = m[1];
      lines = [];
    } else if (current !== null) {
      lines.push(l);
    }
  }
  if (current !== null) files.set(current, lines.join('\n'));
  return files;
}

function globRegex(pattern: string): RegExp {
  return new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]')}$`);
}

/** The directives of `file` with every `include` replaced by the included files' directives. */
function resolveIncludes(files: ReadonlyMap<string, string>, file: string, confDir: string, depth = 0): NginxDirective[] {
  const text = files.get(file);
  if (text === undefined || depth > 16) return [];
  const expand = (list: NginxDirective[]): NginxDirective[] =>
    list.flatMap((d) => {
      if (d.name === 'include' && d.args.length === 1) {
        const pattern = isAbsolute(d.args[0]) ? d.args[0] : join(confDir, d.args[0]);
        const re = globRegex(pattern);
        return [...files.keys()].filter((f) => re.test(f)).flatMap((f) => resolveIncludes(files, f, confDir, depth + 1));
      }
      return [{ ...d, block: d.block === null ? null : expand(d.block) }];
    });
  return expand(parseNginx(text, file));
}

/** The port of `host:port`, `port`, `[::]:port`; null for unix sockets. */
function listenPort(arg: string, dflt: number): number | null {
  if (arg.startsWith('unix:')) return null;
  const m = /(?:^|:)(\d+)$/.exec(arg);
  if (m !== null) return Number(m[1]);
  return dflt;
}

/**
 * Locations of an nginx configuration (`nginx -T` output) whose
 * `proxy_pass` reaches `daemonPort`, directly or through an `upstream`,
 * with the effective `proxy_read_timeout` (location, enclosing locations,
 * server, http; nginx's default 60 s).
 *
 * @param proxyPort - the port clients use (from `--proxy-url`), to mark the servers listening there
 */
export function nginxTimeouts(dump: string, daemonPort: number, proxyPort: number | null): ProxyTimeout[] {
  const files = splitNginxDump(dump);
  const main = files.keys().next().value;
  if (main === undefined) return [];
  const tree = resolveIncludes(files, main, dirname(main));
  const out: ProxyTimeout[] = [];
  const timeoutOf = (list: NginxDirective[]): NginxDirective | undefined => list.find((d) => d.name === 'proxy_read_timeout');
  for (const http of tree.filter((d) => d.name === 'http' && d.block !== null)) {
    const hb = http.block as NginxDirective[];
    const upstreams = new Map<string, number[]>();
    for (const u of hb.filter((d) => d.name === 'upstream' && d.block !== null)) {
      const ports = (u.block as NginxDirective[]).filter((d) => d.name === 'server').map((d) => listenPort(d.args[0] ?? '', 80)).filter((p): p is number => p !== null);
      upstreams.set(u.args[0], ports);
    }
    for (const server of hb.filter((d) => d.name === 'server' && d.block !== null)) {
      const sb = server.block as NginxDirective[];
      const listens = sb.filter((d) => d.name === 'listen').map((d) => listenPort(d.args[0] ?? '', 80)).filter((p): p is number => p !== null);
      if (listens.length === 0) listens.push(80);
      const walk = (list: NginxDirective[], chain: NginxDirective[][], path: string): void => {
        for (const d of list) {
          if (d.name === 'location' && d.block !== null) {
            walk(d.block, [d.block, ...chain], d.args.join(' '));
            continue;
          }
          if (d.name !== 'proxy_pass' || d.args.length === 0 || d.args[0].includes('$')) continue;
          const m = /^https?:\/\/(\[[^\]]+\]|[^/:]+)(?::(\d+))?/.exec(d.args[0]);
          if (m === null) continue;
          const ports = m[2] !== undefined ? [Number(m[2])] : upstreams.get(m[1]) ?? [d.args[0].startsWith('https') ? 443 : 80];
          if (!ports.includes(daemonPort)) continue;
          const set = [...chain, sb, hb].map(timeoutOf).find((t) => t !== undefined);
          const seconds = set === undefined ? 60 : nginxSeconds(set.args[0] ?? '');
          if (seconds === null) continue;
          out.push({
            server: 'nginx',
            seconds,
            source: set === undefined ? 'default (no proxy_read_timeout set)' : `proxy_read_timeout ${set.args[0]} at ${set.file}:${set.line}`,
            proxies: `${path === '' ? 'server' : `location ${path}`} (${d.file}:${d.line}) of the server listening on ${listens.join(', ')}`,
            onProxyPort: proxyPort !== null && listens.includes(proxyPort),
          });
        }
      };
      walk(sb, [], '');
    }
  }
  return out;
}

/** Command lines of running processes whose title or argv[0] matches. */
function processes(match: (argv0: string) => boolean): string[][] {
  const out: string[][] = [];
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((p) => /^\d+$/.test(p));
  } catch {
    return out;
  }
  for (const pid of pids) {
    try {
      const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter((a) => a !== '');
      if (argv.length > 0 && match(argv[0])) out.push(argv);
    } catch {
      // gone, or not ours to read
    }
  }
  return out;
}

function run(cmd: string, args: string[], timeoutMs: number): Promise<{ ok: boolean; stdout: string; stderr: string; missing: boolean }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      resolve({ ok: err === null, stdout, stderr, missing: (err as NodeJS.ErrnoException | null)?.code === 'ENOENT' });
    });
  });
}

/** `nginx -T` argument sets: one per running master (its binary, `-c`, `-p`), else the default configuration. */
function nginxInvocations(): { bin: string; args: string[] }[] {
  const seen = new Set<string>();
  const out: { bin: string; args: string[] }[] = [];
  for (const argv of processes((a) => a.startsWith('nginx: master process'))) {
    // The master's title: "nginx: master process /usr/sbin/nginx -c /etc/nginx/nginx.conf -g daemon off;".
    const words = argv.join(' ').replace(/^nginx: master process\s*/, '').trim().split(/\s+/);
    const bin = words[0] !== undefined && words[0].startsWith('/') ? words[0] : 'nginx';
    const args = ['-T'];
    for (let i = 1; i < words.length - 1; i++) if (words[i] === '-c' || words[i] === '-p') args.push(words[i], words[++i]);
    const key = [bin, ...args].join(' ');
    if (!seen.has(key)) {
      seen.add(key);
      out.push({ bin, args });
    }
  }
  if (out.length === 0) out.push({ bin: 'nginx', args: ['-T'] });
  return out;
}

// --------------------------------------------------------------- apache --

interface ApacheScope {
  proxyTimeout: { seconds: number; where: string } | null;
  timeout: { seconds: number; where: string } | null;
}

interface ApacheMatch {
  vhost: ApacheScope | null;
  keyTimeout: { seconds: number; where: string } | null;
  proxies: string;
}

function readBounded(path: string): string | null {
  try {
    const st = statSync(path);
    if (!st.isFile() || st.size > MAX_FILE_BYTES) return null;
    return readFileSync(path, 'utf8');
  } catch {
    return null;
  }
}

/** Files an Apache `Include` names: a file, a directory (all files in it), or a wildcard in the last component. */
function apacheIncludes(pattern: string, serverRoot: string): string[] {
  const path = isAbsolute(pattern) ? pattern : join(serverRoot, pattern);
  const dir = dirname(path);
  const last = path.slice(dir.length + 1);
  try {
    if (!/[*?[]/.test(last)) {
      if (statSync(path).isDirectory()) return readdirSync(path).sort().map((f) => join(path, f));
      return [path];
    }
    const re = globRegex(last);
    return readdirSync(dir).filter((f) => re.test(f)).sort().map((f) => join(dir, f));
  } catch {
    return [];
  }
}

/**
 * `ProxyPass`/`ProxyPassMatch`/`RewriteRule … [P]` lines of an Apache
 * configuration that reach `daemonPort`, with the timeout that applies:
 * the line's `timeout=`, else `ProxyTimeout` (virtual host, then server),
 * else `Timeout` (likewise), else 60 s.
 */
export function apacheTimeouts(mainFile: string, serverRoot: string, daemonPort: number): ProxyTimeout[] {
  const global: ApacheScope = { proxyTimeout: null, timeout: null };
  const matches: ApacheMatch[] = [];
  let vhost: ApacheScope | null = null;
  let files = 0;
  let root = serverRoot;
  const visit = (file: string, depth: number): void => {
    if (depth > 16 || files++ > MAX_FILES) return;
    const text = readBounded(file);
    if (text === null) return;
    const lines = text.replace(/\\\r?\n/g, ' ').split('\n');
    lines.forEach((raw, index) => {
      const l = raw.trim();
      if (l === '' || l.startsWith('#')) return;
      const where = `${file}:${index + 1}`;
      const words = l.match(/"[^"]*"|\S+/g)?.map((w) => w.replace(/^"(.*)"$/, '$1')) ?? [];
      const name = words[0].toLowerCase();
      if (name === '<virtualhost') vhost = { proxyTimeout: null, timeout: null };
      else if (name === '</virtualhost>') vhost = null;
      else if (name === 'serverroot' && words[1] !== undefined) root = words[1];
      else if ((name === 'include' || name === 'includeoptional') && words[1] !== undefined) {
        for (const f of apacheIncludes(words[1], root)) visit(f, depth + 1);
      } else if ((name === 'timeout' || name === 'proxytimeout') && /^\d+$/.test(words[1] ?? '')) {
        const scope: ApacheScope = vhost ?? global;
        const v = { seconds: Number(words[1]), where };
        if (name === 'timeout') scope.timeout = v;
        else scope.proxyTimeout = v;
      } else if (name === 'proxypass' || name === 'proxypassmatch' || (name === 'rewriterule' && /\[[^\]]*\bP\b[^\]]*\]/i.test(l))) {
        const url = words[2] ?? '';
        if (!new RegExp(`^(?:ws|wss|http|https)://[^/]*:${daemonPort}(?:/|$)`).test(url)) return;
        const key = words.slice(3).map((w) => /^timeout=(\d+)$/i.exec(w)).find((m) => m !== null);
        matches.push({ vhost, keyTimeout: key ? { seconds: Number(key[1]), where } : null, proxies: `${words[0]} ${words[1]} ${url} (${where})` });
      }
    });
  };
  visit(mainFile, 0);
  return matches.map((m) => {
    const candidates: [string, { seconds: number; where: string } | null | undefined][] = [
      ['timeout=', m.keyTimeout],
      ['ProxyTimeout ', m.vhost?.proxyTimeout],
      ['ProxyTimeout ', global.proxyTimeout],
      ['Timeout ', m.vhost?.timeout],
      ['Timeout ', global.timeout],
    ];
    const hit = candidates.find(([, v]) => v !== null && v !== undefined);
    return {
      server: 'apache' as const,
      seconds: hit?.[1]?.seconds ?? 60,
      source: hit === undefined ? 'default Timeout (none set)' : `${hit[0]}${hit[1]!.seconds} at ${hit[1]!.where}`,
      proxies: m.proxies,
      onProxyPort: false,
    };
  });
}

/** Apache's main configuration file and server root: of the running master when it names them, else Debian's or Red Hat's. */
function apacheConfigs(): { file: string; root: string }[] {
  const out: { file: string; root: string }[] = [];
  for (const argv of processes((a) => /(^|\/)(apache2|httpd)$/.test(a))) {
    let root: string | null = null;
    let file: string | null = null;
    for (let i = 1; i < argv.length - 1; i++) {
      if (argv[i] === '-d') root = argv[i + 1];
      if (argv[i] === '-f') file = argv[i + 1];
    }
    if (file !== null) out.push({ file: isAbsolute(file) ? file : join(root ?? '/etc/apache2', file), root: root ?? dirname(file) });
  }
  for (const [file, root] of [['/etc/apache2/apache2.conf', '/etc/apache2'], ['/etc/httpd/conf/httpd.conf', '/etc/httpd']]) {
    if (readBounded(file) !== null && !out.some((c) => c.file === file)) out.push({ file, root });
  }
  return out;
}

/** Whether an Apache master process runs (so its configuration matters). */
function apacheRuns(): boolean {
  return processes((a) => /(^|\/)(apache2|httpd)$/.test(a)).length > 0;
}

/**
 * The read timeouts of the local nginx and Apache for tp-ws's port.
 *
 * @param daemonPort - `server.port`
 * @param proxyPort - the port of `--proxy-url`, to prefer the front the client used
 * @param timeoutMs - for each `nginx -T`
 */
export async function findProxyTimeouts(daemonPort: number, proxyPort: number | null, timeoutMs: number): Promise<ProxyTimeoutResult> {
  const found: ProxyTimeout[] = [];
  const notes: string[] = [];
  for (const { bin, args } of nginxInvocations()) {
    let r = await run(bin, args, timeoutMs);
    // Debian installs nginx in /usr/sbin, which a user's PATH may lack.
    if (r.missing && bin === 'nginx') r = await run('/usr/sbin/nginx', args, timeoutMs);
    if (r.missing) continue;
    if (!r.ok && r.stdout === '') {
      notes.push(`${bin} ${args.join(' ')} failed: ${r.stderr.trim().split('\n').pop() ?? 'no output'}`);
      continue;
    }
    found.push(...nginxTimeouts(r.stdout, daemonPort, proxyPort));
  }
  const running = apacheRuns();
  for (const { file, root } of apacheConfigs()) {
    const t = apacheTimeouts(file, root, daemonPort);
    // An installed but stopped Apache proxies nothing: count it only when it runs or nothing else was found.
    if (running || found.length === 0) found.push(...t);
  }
  return { found, notes };
}
