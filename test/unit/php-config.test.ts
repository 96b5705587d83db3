/**
 * The PHP config reader: define() constants and `return [...]` arrays taken
 * from source text without running PHP, with PHP's string rules, and
 * everything it does not understand skipped rather than fatal.
 */
import { describe, expect, it } from 'vitest';

import { MAX_PHP_BYTES, parsePhpDefines, parsePhpReturnArray, type PhpEntry } from '../../src/teampass/php-config.js';

/** name → literal value, or `{ notLiteral: why }`. */
function values(entries: ReadonlyMap<string, PhpEntry>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, e] of entries) out[name] = e.literal ? e.value : { notLiteral: e.why };
  return out;
}

const defines = (src: string | Buffer) => values(parsePhpDefines(src).entries);
const array = (src: string | Buffer) => values(parsePhpReturnArray(src).entries);

describe('parsePhpDefines', () => {
  it('reads the constants TeamPass\'s installer writes, skipping array() values and code around them', () => {
    const src = `<?php
// DATABASE connexion parameters
define("DB_HOST", "127.0.0.1");
define('DB_PORT', "3306");
define("DB_SSL", false); // if DB over SSL then comment this line
define("DB_CONNECT_OPTIONS", array(
    MYSQLI_OPT_CONNECT_TIMEOUT => 10
));
define("SECUREFILE", "key.txt");
if (isset($_SESSION['settings']['timezone']) === true) {
    date_default_timezone_set($_SESSION['settings']['timezone']);
}
`;
    expect(defines(src)).toEqual({
      DB_HOST: '127.0.0.1',
      DB_PORT: '3306',
      DB_SSL: false,
      DB_CONNECT_OPTIONS: { notLiteral: 'an array' },
      SECUREFILE: 'key.txt',
    });
    expect(parsePhpDefines(src).entries.get('SECUREFILE')?.line).toBe(9);
  });

  it('applies PHP\'s single-quote rules: only \\\\ and \\\' are escapes', () => {
    expect(defines(String.raw`<?php define('A', 'it\'s a \\ back\slash \n $x {$y}');`)).toEqual({ A: "it's a \\ back\\slash \\n $x {$y}" });
  });

  it('applies PHP\'s double-quote escapes: \\n \\t \\" \\$ \\\\, octal, \\x, \\u{}, and keeps unknown ones', () => {
    const src = String.raw`<?php define("A", "a\"b\$c\\d\ne\tf\101\x42\u{e9}\q");`;
    expect(defines(src)).toEqual({ A: 'a"b$c\\d\ne\tfAB\u00e9\\q' });
  });

  it('turns \\x and octal escapes into bytes, so UTF-8 written as escapes reads as text', () => {
    expect(defines(String.raw`<?php define("A", "\xc3\xa9\303\251");`)).toEqual({ A: 'éé' });
  });

  it('reads UTF-8 text in strings as text', () => {
    expect(defines(`<?php define("A", 'pässwörd-密码');`)).toEqual({ A: 'pässwörd-密码' });
  });

  it('reports a string that is not UTF-8 instead of mangling it', () => {
    expect(defines(String.raw`<?php define("A", "\xff\xfe");`)).toEqual({ A: { notLiteral: 'a string that is not UTF-8' } });
    expect(defines(Buffer.from([...Buffer.from('<?php define("A", \''), 0xff, ...Buffer.from("');")]))).toEqual({ A: { notLiteral: 'a string that is not UTF-8' } });
  });

  it('does not take a double-quoted string with a $variable in it', () => {
    expect(defines('<?php define("A", "x$y"); define("B", "x{$y[1]}"); define("C", "cost: $ 5");')).toEqual({
      A: { notLiteral: 'a string with a $variable in it' },
      B: { notLiteral: 'a string with a $variable in it' },
      C: 'cost: $ 5',
    });
  });

  it('reads integers in every PHP notation, signed, and floats', () => {
    expect(defines('<?php define("A", 8080); define("B", -5); define("C", 0x1F); define("D", 0b101); define("E", 017); define("F", 0o17); define("G", 1_000); define("H", 1.5); define("I", +3); define("J", 0);')).toEqual({
      A: 8080, B: -5, C: 31, D: 5, E: 15, F: 15, G: 1000, H: 1.5, I: 3, J: 0,
    });
  });

  it('reads true, false and null in any case', () => {
    expect(defines('<?php define("A", TRUE); define("B", False); define("C", null);')).toEqual({ A: true, B: false, C: null });
  });

  it('reports expressions, constants, calls and casts as not literals', () => {
    expect(defines(`<?php
define("A", __DIR__ . '/x');
define("B", getenv('DB_PASS'));
define("C", (int) '5');
define("D", PHP_EOL);
define("E", 'a' . 'b');
define("F", [1, 2]);
define("G", <<<EOT
heredoc
EOT);
define("H", \`id\`);
`)).toEqual({
      A: { notLiteral: 'an expression, not a literal' },
      B: { notLiteral: 'an expression, not a literal' },
      C: { notLiteral: 'an expression, not a literal' },
      D: { notLiteral: 'a constant or name, not a literal' },
      E: { notLiteral: 'an expression, not a literal' },
      F: { notLiteral: 'an array' },
      G: { notLiteral: 'a heredoc' },
      H: { notLiteral: 'a shell command' },
    });
  });

  it('ignores comments of every kind, including define() calls inside them', () => {
    const src = `<?php
# define("A", "hash");
// define("A", "slashes");
/* define("A", "block");
   still a comment */
define(/* inline */ "A" /* here too */, // and here
  "real");
`;
    expect(defines(src)).toEqual({ A: 'real' });
  });

  it('keeps the first definition, as PHP does (the second define only warns)', () => {
    expect(defines('<?php define("A", "first"); define("A", "second");')).toEqual({ A: 'first' });
  });

  it('takes \\define() and DEFINE(), not methods, static calls or declarations named define', () => {
    expect(defines(`<?php
\\define("A", 1);
DEFINE("B", 2);
$x->define("C", 3);
Foo::define("D", 4);
function define_x() {}
class K { function define($a, $b) {} }
`)).toEqual({ A: 1, B: 2 });
  });

  it('skips define() whose name is not a single string literal', () => {
    expect(defines('<?php define($name, "x"); define("A" . "B", "y"); define("C", "z");')).toEqual({ C: 'z' });
  });

  it('reads only code: text outside <?php … ?> is output', () => {
    expect(defines('define("A", "no"); <?php define("B", "yes"); ?> define("C", "no") <?php define("D", "yes");')).toEqual({ B: 'yes', D: 'yes' });
  });

  it('ends a line comment at a close tag, as PHP does', () => {
    expect(defines('<?php // comment ?> text <?php define("A", 1);')).toEqual({ A: 1 });
  });

  it('stops at an unterminated string or comment, keeping what came before and saying where', () => {
    // PHP strings span lines: the quote left open on line 3 swallows line 4's
    // first quote, and the string opened there never ends.
    const r = parsePhpDefines('<?php\ndefine("A", 1);\ndefine("B", "open);\ndefine("C", 3);\n');
    expect(values(r.entries)).toEqual({ A: 1 });
    expect(r.problems).toEqual(['line 4: unterminated string', "line 3: define('B', …) is not closed"]);
    expect(parsePhpDefines('<?php define("A", 1); /* open').problems).toEqual(['line 1: unterminated /* comment']);
  });

  it('survives garbage without throwing', () => {
    for (const src of ['', '<?php', '<?php define(', '<?php define("A"', '<?php define("A",', '<?php ))))]]]', '<?php <<<', '<?php "\\', "<?php '\\", '<?php #[Attr] define("A", 1);']) {
      expect(() => parsePhpDefines(src), src).not.toThrow();
    }
    expect(defines('<?php #[Attr] define("A", 1);')).toEqual({ A: 1 });
  });

  it('does not quote values in its problem notes', () => {
    const r = parsePhpDefines('<?php define("DB_PASSWD", "hunter2-secret');
    expect(r.problems.join(' ')).not.toContain('hunter2');
  });

  it('reads at most MAX_PHP_BYTES of input', () => {
    const big = `<?php define("A", 1); /*${' '.repeat(MAX_PHP_BYTES)}*/ define("B", 2);`;
    const r = parsePhpDefines(big);
    expect(values(r.entries)).toEqual({ A: 1 });
    expect(r.problems).toEqual(['line 1: unterminated /* comment']);
  });
});

describe('parsePhpReturnArray', () => {
  it('reads TeamPass\'s websocket.php, reporting the __DIR__ expression as no literal', () => {
    const src = `<?php
declare(strict_types=1);

return [
    'host' => '127.0.0.1',
    'port' => 8080,
    'log_file' => __DIR__ . '/../logs/websocket.log',
    'log_level' => 'info',
];
`;
    const r = parsePhpReturnArray(src);
    expect(r.found).toBe(true);
    expect(values(r.entries)).toEqual({
      host: '127.0.0.1',
      port: 8080,
      log_file: { notLiteral: 'an expression, not a literal' },
      log_level: 'info',
    });
    expect(r.entries.get('port')?.line).toBe(6);
  });

  it('reads array(...) too, with double-quoted and integer keys, and no trailing comma', () => {
    expect(array('<?php return array("host" => "0.0.0.0", 5 => true, \'port\' => "9000");')).toEqual({ host: '0.0.0.0', 5: true, port: '9000' });
  });

  it('skips nested arrays, keyless items and computed keys, keeping the entries after them', () => {
    expect(array(`<?php return [
  'nested' => ['a' => 1, 'b' => [2, 3]],
  'call' => foo(1, 2),
  'plain',
  KEY => 1,
  'a' . 'b' => 2,
  'port' => 8081,
];`)).toEqual({ nested: { notLiteral: 'an array' }, call: { notLiteral: 'an expression, not a literal' }, port: 8081 });
  });

  it('keeps the last value of a key given twice, as PHP does', () => {
    expect(array("<?php return ['port' => 1, 'port' => 2];")).toEqual({ port: 2 });
  });

  it('takes the top-level return, not one inside a function or a closure', () => {
    expect(array(`<?php
function helper() { return ['port' => 1]; }
$f = function () { return ['port' => 2]; };
return ['port' => 3];
`)).toEqual({ port: 3 });
  });

  it('says when the file returns no array literal', () => {
    expect(parsePhpReturnArray('<?php $config = ["port" => 1];').found).toBe(false);
    expect(parsePhpReturnArray('<?php return $config;').found).toBe(false);
    expect(parsePhpReturnArray('<?php return require "other.php";').found).toBe(false);
    expect(parsePhpReturnArray('').found).toBe(false);
  });

  it('notes an array that is never closed, keeping the complete entries', () => {
    const r = parsePhpReturnArray("<?php return ['host' => 'h', 'port' => 1");
    expect(r.found).toBe(true);
    expect(values(r.entries)).toEqual({ host: 'h' });
    expect(r.problems).toEqual(['the returned array is not closed']);
  });

  it('survives garbage without throwing', () => {
    for (const src of ['<?php return [', '<?php return [=>', '<?php return [,,,]', "<?php return ['a' =>", '<?php return array(', '<?php return [)]']) {
      expect(() => parsePhpReturnArray(src), src).not.toThrow();
    }
    expect(array('<?php return [,,,]')).toEqual({});
  });

  it('stops at a stray closing bracket or semicolon inside the array, keeping what came before', () => {
    const r = parsePhpReturnArray("<?php return [\n'host' => 'h',\n'port' => 1;\n'x' => 2];");
    expect(values(r.entries)).toEqual({ host: 'h', port: 1 });
    expect(r.problems).toEqual(['line 3: the returned array is malformed']);
    expect(parsePhpReturnArray('<?php return [)];').problems).toEqual(['line 1: the returned array is malformed']);
  });
});
