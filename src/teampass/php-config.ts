/**
 * Reads the two PHP files TeamPass keeps its configuration in, without
 * running PHP: the `define("NAME", value)` constants of
 * `app/config/settings.php` and the `return [ 'key' => value, ... ];` array of
 * `app/websocket/config/websocket.php`.
 *
 * A small tokenizer for the part of PHP such files are written in (strings
 * with PHP's escape rules, numbers, identifiers, comments, inline HTML around
 * `<?php … ?>`), then two tiny parsers over the tokens. Only literals are
 * taken: a string without interpolation, an integer or float, `true`,
 * `false`, `null`. Anything else (`__DIR__ . '/x'`, `getenv('X')`,
 * `array(...)`, a cast) is reported as "not a literal" and left for the
 * caller to ignore: tp-ws never evaluates PHP. Nothing here throws on odd
 * input; what is not understood is skipped and, where it may matter, noted
 * in `problems`.
 *
 * The input is bytes, as PHP sees it: the source is handled as a `latin1`
 * string (one character per byte) so `"\xE9"` escapes and UTF-8 text in a
 * string both come out as the bytes PHP would hold; a string value is then
 * decoded as UTF-8, and one that is not UTF-8 is reported, not mangled.
 * Messages built here never quote a value (a value may be a password).
 */

/** Largest PHP file parsed; TeamPass's are a few KiB. */
export const MAX_PHP_BYTES = 1_048_576;

/** A literal PHP value. */
export type PhpScalar = string | number | boolean | null;

/** One constant (`define`) or array entry (`'key' => value`). */
export type PhpEntry =
  | { readonly name: string; readonly line: number; readonly literal: true; readonly value: PhpScalar }
  | { readonly name: string; readonly line: number; readonly literal: false; readonly why: string };

/** What a parser found: entries by name (first `define` wins, last array key wins, as in PHP). */
export interface PhpParseResult {
  readonly entries: ReadonlyMap<string, PhpEntry>;
  /** Things not understood that may explain a missing entry, e.g. `line 7: unterminated string`. */
  readonly problems: readonly string[];
}

type Token =
  | { kind: 'str'; value: string; line: number } // a literal string, already unescaped (bytes as latin1)
  | { kind: 'opaque'; why: string; line: number } // a string-like token that is no literal: "…$x…", heredoc, `cmd`
  | { kind: 'num'; value: number; line: number }
  | { kind: 'id'; value: string; line: number } // identifier or qualified name, leading `\` dropped
  | { kind: 'var'; line: number } // $name
  | { kind: 'punct'; value: string; line: number };

const isIdStart = (c: string): boolean => /[A-Za-z_\x80-\xff]/.test(c);
const isIdChar = (c: string): boolean => /[A-Za-z0-9_\x80-\xff]/.test(c);

/** Multi-character operators the parsers care about (the rest are single characters to them). */
const OPERATORS = ['?->', '=>', '->', '::', '...'] as const;

/** The one-character escapes of a double-quoted PHP string. */
const DQ_ESCAPES: Readonly<Record<string, string>> = { n: '\n', t: '\t', r: '\r', v: '\v', e: '\x1b', f: '\f', '\\': '\\', $: '$', '"': '"' };

const UTF8 = new TextDecoder('utf-8', { fatal: true });

/** `latin1` bytes → UTF-8 text, or null when the bytes are not UTF-8. */
function bytesToText(bytes: string): string | null {
  try {
    return UTF8.decode(Buffer.from(bytes, 'latin1'));
  } catch {
    return null;
  }
}

/** A code point as UTF-8 bytes in a latin1 string (for `"\u{…}"`). */
function codePointBytes(cp: number): string {
  return Buffer.from(String.fromCodePoint(cp), 'utf8').toString('latin1');
}

class Tokenizer {
  readonly tokens: Token[] = [];
  readonly problems: string[] = [];
  #src: string;
  #pos = 0;
  #line = 1;

  constructor(src: string) {
    this.#src = src;
  }

  run(): this {
    this.#skipInlineHtml();
    while (this.#pos < this.#src.length) {
      if (!this.#next()) break;
    }
    return this;
  }

  #advance(n: number): void {
    for (let i = 0; i < n && this.#pos < this.#src.length; i++) {
      if (this.#src[this.#pos] === '\n') this.#line++;
      this.#pos++;
    }
  }

  #startsWith(s: string): boolean {
    return this.#src.startsWith(s, this.#pos);
  }

  /** Text outside `<?php … ?>` is output, not code: skip to the next open tag. */
  #skipInlineHtml(): void {
    const re = /<\?(php\b|=)?/gi;
    re.lastIndex = this.#pos;
    const m = re.exec(this.#src);
    const end = m === null ? this.#src.length : m.index + m[0].length;
    this.#advance(end - this.#pos);
  }

  /** Reads one token (or skips blanks and comments); false when input ends unusably. */
  #next(): boolean {
    const src = this.#src;
    const c = src[this.#pos];
    const line = this.#line;

    if (c === ' ' || c === '\t' || c === '\n' || c === '\r' || c === '\f' || c === '\v') {
      this.#advance(1);
      return true;
    }
    if (this.#startsWith('?>')) {
      this.#advance(2);
      this.tokens.push({ kind: 'punct', value: ';', line }); // a close tag ends a statement
      this.#skipInlineHtml();
      return true;
    }
    if (this.#startsWith('#[')) {
      // A PHP 8 attribute, not a comment: keep it as a bracket so depth stays right.
      this.#advance(2);
      this.tokens.push({ kind: 'punct', value: '[', line });
      return true;
    }
    if (c === '#' || this.#startsWith('//')) {
      // A line comment ends at the newline or at a close tag.
      let i = this.#pos;
      while (i < src.length && src[i] !== '\n' && !src.startsWith('?>', i)) i++;
      this.#advance(i - this.#pos);
      return true;
    }
    if (this.#startsWith('/*')) {
      const end = src.indexOf('*/', this.#pos + 2);
      if (end === -1) {
        this.problems.push(`line ${line}: unterminated /* comment`);
        return false;
      }
      this.#advance(end + 2 - this.#pos);
      return true;
    }
    if (c === "'") return this.#singleQuoted(line);
    if (c === '"') return this.#doubleQuoted(line);
    if (c === '`') {
      const end = src.indexOf('`', this.#pos + 1);
      if (end === -1) {
        this.problems.push(`line ${line}: unterminated \` string`);
        return false;
      }
      this.#advance(end + 1 - this.#pos);
      this.tokens.push({ kind: 'opaque', why: 'a shell command', line });
      return true;
    }
    if (this.#startsWith('<<<')) return this.#heredoc(line);
    if (c === '$' && this.#pos + 1 < src.length && isIdStart(src[this.#pos + 1])) {
      let i = this.#pos + 1;
      while (i < src.length && isIdChar(src[i])) i++;
      this.#advance(i - this.#pos);
      this.tokens.push({ kind: 'var', line });
      return true;
    }
    if (/[0-9]/.test(c) || (c === '.' && /[0-9]/.test(src[this.#pos + 1] ?? ''))) return this.#number(line);
    if (isIdStart(c) || (c === '\\' && isIdStart(src[this.#pos + 1] ?? ''))) {
      const m = /^\\?[A-Za-z_\x80-\xff][A-Za-z0-9_\x80-\xff]*(?:\\[A-Za-z_\x80-\xff][A-Za-z0-9_\x80-\xff]*)*/.exec(src.slice(this.#pos, this.#pos + 1024));
      const text = (m as RegExpExecArray)[0];
      this.#advance(text.length);
      this.tokens.push({ kind: 'id', value: text.replace(/^\\/, ''), line });
      return true;
    }
    const op = OPERATORS.find((o) => this.#startsWith(o));
    const value = op ?? c;
    this.#advance(value.length);
    this.tokens.push({ kind: 'punct', value, line });
    return true;
  }

  /** `'…'`: only `\\` and `\'` are escapes. */
  #singleQuoted(line: number): boolean {
    const src = this.#src;
    let out = '';
    let i = this.#pos + 1;
    while (i < src.length && src[i] !== "'") {
      if (src[i] === '\\' && (src[i + 1] === '\\' || src[i + 1] === "'")) {
        out += src[i + 1];
        i += 2;
      } else {
        out += src[i++];
      }
    }
    if (i >= src.length) {
      this.problems.push(`line ${line}: unterminated string`);
      return false;
    }
    this.#advance(i + 1 - this.#pos);
    this.#pushString(out, line);
    return true;
  }

  /** `"…"`: PHP's double-quoted escapes; a `$name` or `{$` inside makes it no literal. */
  #doubleQuoted(line: number): boolean {
    const src = this.#src;
    let out = '';
    let interpolated = false;
    let i = this.#pos + 1;
    while (i < src.length && src[i] !== '"') {
      const ch = src[i];
      if (ch === '$' && (isIdStart(src[i + 1] ?? '') || src[i + 1] === '{')) interpolated = true;
      if (ch === '{' && src[i + 1] === '$') interpolated = true;
      if (ch !== '\\' || i + 1 >= src.length) {
        out += ch;
        i++;
        continue;
      }
      const e = src[i + 1];
      if (Object.hasOwn(DQ_ESCAPES, e)) {
        out += DQ_ESCAPES[e];
        i += 2;
        continue;
      }
      const octal = /^[0-7]{1,3}/.exec(src.slice(i + 1, i + 4));
      if (octal !== null) {
        out += String.fromCharCode(Number.parseInt(octal[0], 8) & 0xff);
        i += 1 + octal[0].length;
        continue;
      }
      const hex = /^x([0-9A-Fa-f]{1,2})/.exec(src.slice(i + 1, i + 4));
      if (hex !== null) {
        out += String.fromCharCode(Number.parseInt(hex[1], 16));
        i += 1 + hex[0].length;
        continue;
      }
      const uni = /^u\{([0-9A-Fa-f]{1,6})\}/.exec(src.slice(i + 1, i + 10));
      if (uni !== null && Number.parseInt(uni[1], 16) <= 0x10ffff) {
        out += codePointBytes(Number.parseInt(uni[1], 16));
        i += 1 + uni[0].length;
        continue;
      }
      // Any other backslash stays as it is, as in PHP.
      out += ch;
      i++;
    }
    if (i >= src.length) {
      this.problems.push(`line ${line}: unterminated string`);
      return false;
    }
    this.#advance(i + 1 - this.#pos);
    if (interpolated) this.tokens.push({ kind: 'opaque', why: 'a string with a $variable in it', line });
    else this.#pushString(out, line);
    return true;
  }

  #pushString(bytes: string, line: number): void {
    const text = bytesToText(bytes);
    if (text === null) this.tokens.push({ kind: 'opaque', why: 'a string that is not UTF-8', line });
    else this.tokens.push({ kind: 'str', value: text, line });
  }

  /** `<<<ID … ID` and `<<<'ID' … ID`: skipped whole, reported as no literal. */
  #heredoc(line: number): boolean {
    const src = this.#src;
    const m = /^<<<[ \t]*(["']?)([A-Za-z_\x80-\xff][A-Za-z0-9_\x80-\xff]*)\1\r?\n/.exec(src.slice(this.#pos, this.#pos + 256));
    if (m === null) {
      this.#advance(3);
      this.tokens.push({ kind: 'punct', value: '<<<', line });
      return true;
    }
    // The closing identifier starts a line (PHP 7.3+: after optional blanks)
    // and is not followed by an identifier character.
    const close = new RegExp(`\\n[ \\t]*${m[2]}(?![A-Za-z0-9_\\x80-\\xff])`, 'g');
    close.lastIndex = this.#pos + m[0].length - 1;
    const end = close.exec(src);
    if (end === null) {
      this.problems.push(`line ${line}: unterminated heredoc`);
      return false;
    }
    this.#advance(end.index + end[0].length - this.#pos);
    this.tokens.push({ kind: 'opaque', why: 'a heredoc', line });
    return true;
  }

  /** Integers (decimal, 0x, 0b, 0o and leading-zero octal, `_` separators) and floats. */
  #number(line: number): boolean {
    const rest = this.#src.slice(this.#pos, this.#pos + 128);
    const forms: ReadonlyArray<[RegExp, (s: string) => number]> = [
      [/^0[xX][0-9A-Fa-f]+(?:_[0-9A-Fa-f]+)*/, (s) => Number.parseInt(s.slice(2), 16)],
      [/^0[bB][01]+(?:_[01]+)*/, (s) => Number.parseInt(s.slice(2), 2)],
      [/^0[oO][0-7]+(?:_[0-7]+)*/, (s) => Number.parseInt(s.slice(2), 8)],
      [/^(?:[0-9]+(?:_[0-9]+)*)?\.[0-9]+(?:_[0-9]+)*(?:[eE][+-]?[0-9]+)?|^[0-9]+(?:_[0-9]+)*(?:\.(?:[0-9]+(?:_[0-9]+)*)?)?[eE][+-]?[0-9]+|^[0-9]+(?:_[0-9]+)*\.(?![.0-9])/, (s) => Number(s)],
      [/^0[0-7]+(?:_[0-7]+)*(?![0-9])/, (s) => Number.parseInt(s.slice(1), 8)],
      [/^[0-9]+(?:_[0-9]+)*/, (s) => Number(s)],
    ];
    for (const [re, read] of forms) {
      const m = re.exec(rest);
      if (m === null) continue;
      this.#advance(m[0].length);
      this.tokens.push({ kind: 'num', value: read(m[0].replace(/_/g, '')), line });
      return true;
    }
    // Unreachable for input starting with a digit; kept so the loop always moves.
    this.#advance(1);
    this.tokens.push({ kind: 'punct', value: rest[0], line });
    return true;
  }
}

const OPEN: Readonly<Record<string, string>> = { '(': ')', '[': ']', '{': '}' };
const CLOSE = new Set([')', ']', '}']);

/**
 * The tokens of one expression starting at `start`, up to (not including) the
 * first of `stops` at bracket depth 0, or a closing bracket that closes an
 * outer one. Returns the end index (the stop token), or -1 when the input
 * ended first.
 */
function expressionEnd(tokens: readonly Token[], start: number, stops: ReadonlySet<string>): number {
  let depth = 0;
  for (let i = start; i < tokens.length; i++) {
    const t = tokens[i];
    if (t.kind !== 'punct') continue;
    if (depth === 0 && stops.has(t.value)) return i;
    if (Object.hasOwn(OPEN, t.value)) depth++;
    else if (CLOSE.has(t.value)) {
      if (depth === 0) return i; // closes an outer bracket: the expression ends here
      depth--;
    } else if (t.value === ';' && depth === 0) return i;
  }
  return -1;
}

/** The literal an expression is, or why it is none. */
function literalOf(tokens: readonly Token[]): { literal: true; value: PhpScalar } | { literal: false; why: string } {
  if (tokens.length === 1) {
    const t = tokens[0];
    if (t.kind === 'str' || t.kind === 'num') return { literal: true, value: t.value };
    if (t.kind === 'opaque') return { literal: false, why: t.why };
    if (t.kind === 'id') {
      const word = t.value.toLowerCase();
      if (word === 'true') return { literal: true, value: true };
      if (word === 'false') return { literal: true, value: false };
      if (word === 'null') return { literal: true, value: null };
      return { literal: false, why: 'a constant or name, not a literal' };
    }
  }
  if (tokens.length === 2 && tokens[0].kind === 'punct' && (tokens[0].value === '-' || tokens[0].value === '+') && tokens[1].kind === 'num') {
    return { literal: true, value: tokens[0].value === '-' ? -tokens[1].value : tokens[1].value };
  }
  if (tokens.length === 0) return { literal: false, why: 'empty' };
  const first = tokens[0];
  if ((first.kind === 'punct' && first.value === '[') || (first.kind === 'id' && first.value.toLowerCase() === 'array')) {
    return { literal: false, why: 'an array' };
  }
  return { literal: false, why: 'an expression, not a literal' };
}

/** The token before `i` makes `define` a method, a declaration or a class name, not the global function. */
function isFunctionCallContext(tokens: readonly Token[], i: number): boolean {
  const prev = tokens[i - 1];
  if (prev === undefined) return true;
  if (prev.kind === 'punct') return !['->', '?->', '::'].includes(prev.value);
  if (prev.kind === 'id') return !['function', 'new', 'const', 'fn', 'class', 'interface', 'trait', 'enum'].includes(prev.value.toLowerCase());
  return true;
}

/**
 * The constants a PHP file defines with `define('NAME', value)` (TeamPass's
 * `settings.php`). A call whose name is not a single string literal is
 * skipped. When a name is defined twice the first one is kept, as PHP does
 * (the second `define` only warns).
 *
 * @param source - the file's bytes (a string is taken as UTF-8 text); at most `MAX_PHP_BYTES`
 */
export function parsePhpDefines(source: Buffer | string): PhpParseResult {
  const { tokens, problems } = tokenize(source);
  const entries = new Map<string, PhpEntry>();
  const argStops = new Set([',', ')']);
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i];
    if (t.kind !== 'id' || t.value.toLowerCase() !== 'define') continue;
    const open = tokens[i + 1];
    if (open?.kind !== 'punct' || open.value !== '(' || !isFunctionCallContext(tokens, i)) continue;
    const nameEnd = expressionEnd(tokens, i + 2, argStops);
    if (nameEnd === -1) break;
    const nameTokens = tokens.slice(i + 2, nameEnd);
    const nameTok = nameTokens[0];
    if (nameTokens.length !== 1 || nameTok.kind !== 'str' || (tokens[nameEnd] as { value: string }).value !== ',') continue;
    const valueEnd = expressionEnd(tokens, nameEnd + 1, argStops);
    if (valueEnd === -1) {
      problems.push(`line ${t.line}: define('${nameTok.value}', …) is not closed`);
      break;
    }
    if (!entries.has(nameTok.value)) {
      entries.set(nameTok.value, { name: nameTok.value, line: nameTok.line, ...literalOf(tokens.slice(nameEnd + 1, valueEnd)) });
    }
    i = valueEnd;
  }
  return { entries, problems };
}

/**
 * The `return [ 'key' => value, ... ];` (or `return array(...)`) of a PHP
 * file (TeamPass's `websocket.php`): the first `return` outside any bracket.
 * Keys must be string or integer literals; entries without a key, or with a
 * computed key, are skipped. A key given twice keeps its last value, as in
 * PHP. `found` is false when the file returns no array literal.
 *
 * @param source - the file's bytes (a string is taken as UTF-8 text); at most `MAX_PHP_BYTES`
 */
export function parsePhpReturnArray(source: Buffer | string): PhpParseResult & { found: boolean } {
  const { tokens, problems } = tokenize(source);
  const entries = new Map<string, PhpEntry>();
  let depth = 0;
  let start = -1;
  let close = '';
  for (let i = 0; i < tokens.length && start === -1; i++) {
    const t = tokens[i];
    if (t.kind === 'punct' && Object.hasOwn(OPEN, t.value)) depth++;
    else if (t.kind === 'punct' && CLOSE.has(t.value)) depth = Math.max(0, depth - 1);
    else if (t.kind === 'id' && t.value.toLowerCase() === 'return' && depth === 0) {
      const a = tokens[i + 1];
      const b = tokens[i + 2];
      if (a?.kind === 'punct' && a.value === '[') {
        start = i + 2;
        close = ']';
      } else if (a?.kind === 'id' && a.value.toLowerCase() === 'array' && b?.kind === 'punct' && b.value === '(') {
        start = i + 3;
        close = ')';
      } else {
        return { entries, problems, found: false };
      }
    }
  }
  if (start === -1) return { entries, problems, found: false };

  const keyStops = new Set([',', '=>', close]);
  const valueStops = new Set([',', close]);
  let i = start;
  while (i < tokens.length) {
    const t = tokens[i];
    if (t.kind === 'punct' && t.value === close) return { entries, problems, found: true };
    const keyEnd = expressionEnd(tokens, i, keyStops);
    if (keyEnd === -1) break;
    const stop = tokens[keyEnd] as { value: string };
    if (stop.value !== '=>' && stop.value !== ',' && stop.value !== close) {
      // A `;` or a stray closing bracket inside the array: PHP would not parse it either.
      problems.push(`line ${tokens[keyEnd].line}: the returned array is malformed`);
      return { entries, problems, found: true };
    }
    if (stop.value !== '=>') {
      // An entry without a key (a list item): not a setting.
      i = stop.value === ',' ? keyEnd + 1 : keyEnd;
      continue;
    }
    const keyTokens = tokens.slice(i, keyEnd);
    const valueEnd = expressionEnd(tokens, keyEnd + 1, valueStops);
    if (valueEnd === -1) break;
    const key = keyTokens.length === 1 && (keyTokens[0].kind === 'str' || keyTokens[0].kind === 'num') ? String(keyTokens[0].value) : null;
    if (key !== null) entries.set(key, { name: key, line: keyTokens[0].line, ...literalOf(tokens.slice(keyEnd + 1, valueEnd)) });
    const after = tokens[valueEnd] as { value: string };
    i = after.value === ',' ? valueEnd + 1 : valueEnd;
  }
  problems.push('the returned array is not closed');
  return { entries, problems, found: true };
}

function tokenize(source: Buffer | string): Tokenizer {
  const bytes = typeof source === 'string' ? Buffer.from(source, 'utf8') : source;
  // Bounded: the caller reads at most MAX_PHP_BYTES; a larger input is cut, not parsed whole.
  const text = bytes.subarray(0, MAX_PHP_BYTES).toString('latin1');
  return new Tokenizer(text).run();
}
