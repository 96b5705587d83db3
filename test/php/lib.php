<?php
/**
 * Shared by the test/php/*.php scenario scripts (driven by
 * test/integration/php-emitter.test.ts). Configuration comes from the
 * environment; each script prints one JSON result line on stdout.
 *
 *   TPWS_SOCKET       ingest socket path ('' = none)
 *   TPWS_DSN          PDO DSN of the events table's database ('' = none)
 *   TPWS_DB_USER, TPWS_DB_PASSWORD
 *   TPWS_PREFIX       table prefix (default teampass_)
 *   TPWS_ENCODING     auto | ndjson | msgpack
 *   TPWS_TIMEOUT_MS   ack timeout
 *   TPWS_EVENTS       JSON list of {event_type, target_type, target_id, payload, exclude_user_id}
 */

declare(strict_types=1);

require_once __DIR__ . '/../../emitter/php/TpWsEmitter.php';

/** @var list<array{0: string, 1: string, 2: array<string, mixed>}> */
$GLOBALS['tpws_logs'] = [];

function env(string $name, ?string $default = null): ?string
{
    $v = getenv($name);
    return $v === false ? $default : $v;
}

function test_logger(): Closure
{
    return static function (string $level, string $message, array $context): void {
        $GLOBALS['tpws_logs'][] = [$level, $message, $context];
    };
}

/** The emitter options from the environment, plus `extra`. */
function emitter_options(array $extra = []): array
{
    $dsn = env('TPWS_DSN', '');
    $o = [
        'socket' => env('TPWS_SOCKET', ''),
        'table' => env('TPWS_PREFIX', 'teampass_') . 'websocket_events',
        'encoding' => env('TPWS_ENCODING', 'auto'),
        'timeout_ms' => (int) env('TPWS_TIMEOUT_MS', '1000'),
        'logger' => test_logger(),
    ];
    if ($dsn !== '') {
        $o['dsn'] = $dsn;
        $o['user'] = env('TPWS_DB_USER');
        $o['password'] = env('TPWS_DB_PASSWORD');
    }
    return $extra + $o;
}

/** A PDO of the test database (the caller's own connection, as an application has). */
function test_pdo(): PDO
{
    $pdo = new PDO((string) env('TPWS_DSN'), env('TPWS_DB_USER'), env('TPWS_DB_PASSWORD'), [PDO::ATTR_ERRMODE => PDO::ERRMODE_EXCEPTION]);
    if ($pdo->getAttribute(PDO::ATTR_DRIVER_NAME) === 'sqlite') {
        $pdo->exec('PRAGMA busy_timeout = 5000');
    }
    return $pdo;
}

/** @return list<array<string, mixed>> */
function events_from_env(): array
{
    return json_decode((string) env('TPWS_EVENTS', '[]'), true, 512, JSON_THROW_ON_ERROR);
}

/** Emit one event given as an array (payload objects: {"__object__": {...}} becomes a stdClass). */
function emit_one(TpWs\Emitter $e, array $ev): string
{
    return $e->emit($ev['event_type'], $ev['target_type'], $ev['target_id'] ?? null, decode_payload($ev['payload'] ?? []), $ev['exclude_user_id'] ?? null);
}

function decode_payload(mixed $v): mixed
{
    if (is_array($v)) {
        if (array_key_exists('__object__', $v) && count($v) === 1) {
            return (object) array_map('decode_payload', $v['__object__']);
        }
        return array_map('decode_payload', $v);
    }
    return $v;
}

function describe_error(Throwable $t): array
{
    $r = ['class' => get_class($t), 'message' => $t->getMessage()];
    if ($t instanceof TpWs\InvalidEventException) {
        $r['error_code'] = $t->errorCode;
    }
    if ($t instanceof TpWs\EmitFailedException) {
        $r['event_id'] = $t->eventId;
        $r['socket_error'] = $t->socketError?->getMessage();
        $r['table_error'] = $t->tableError?->getMessage();
        $r['trace'] = $t->getTraceAsString() . "\n" . ($t->getPrevious()?->getTraceAsString() ?? '');
    }
    return $r;
}

/** Which path each emit took, from the log lines. */
function paths(): array
{
    return array_values(array_map(
        static fn (array $l): string => $l[2]['path'] ?? '',
        array_filter($GLOBALS['tpws_logs'], static fn (array $l): bool => isset($l[2]['path'])),
    ));
}

function out(array $result): void
{
    $result['logs'] = $GLOBALS['tpws_logs'];
    echo json_encode($result, JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE | JSON_PARTIAL_OUTPUT_ON_ERROR), "\n";
}
