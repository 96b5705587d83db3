<?php
/**
 * A PHP-FPM request handler (driven by test/integration/php-fpm.test.ts through
 * `cgi-fcgi`): builds a TpWs\Emitter per request, as a web application does,
 * and emits one event to user TPWS_USER_ID with the request counter `n` of the
 * query string. The pool's `env[...]` (or the FastCGI params) give:
 *
 *   TPWS_SOCKET   ingest socket path
 *   TPWS_DSN      PDO DSN of the events table (the fallback)
 *   TPWS_ENCODING auto | ndjson | msgpack (the query string's `encoding` wins)
 *
 * Prints {"ok": true, "id": ..., "pid": getmypid(), "encoding": ..., "paths": [...], "logs": [...]}
 * or {"ok": false, "pid": ..., "error": {...}}. `paths` lists the fallbacks the
 * emitter logged ("table"); empty when the event went over the socket.
 */

declare(strict_types=1);

require_once __DIR__ . '/../../emitter/php/TpWsEmitter.php';

function fpm_param(string $name, string $default = ''): string
{
    $v = $_SERVER[$name] ?? getenv($name);
    return is_string($v) ? $v : $default;
}

header('Content-Type: application/json');

$logs = [];
$query = [];
parse_str((string) ($_SERVER['QUERY_STRING'] ?? ''), $query);
$n = (int) ($query['n'] ?? 0);
$encoding = is_string($query['encoding'] ?? null) ? $query['encoding'] : fpm_param('TPWS_ENCODING', 'auto');

try {
    $emitter = new TpWs\Emitter([
        'socket' => fpm_param('TPWS_SOCKET'),
        'dsn' => fpm_param('TPWS_DSN') === '' ? null : fpm_param('TPWS_DSN'),
        'table' => 'teampass_websocket_events',
        'encoding' => $encoding,
        'timeout_ms' => 2000,
        'logger' => static function (string $level, string $message, array $context) use (&$logs): void {
            $logs[] = [$level, $message, $context];
        },
    ]);
    $id = $emitter->emit('fpm_request', 'user', (int) fpm_param('TPWS_USER_ID', '1'), ['n' => $n, 'pid' => getmypid()]);
    $paths = array_values(array_filter(array_map(static fn (array $l): string => (string) ($l[2]['path'] ?? ''), $logs)));
    $result = ['ok' => true, 'id' => $id, 'pid' => getmypid(), 'n' => $n, 'encoding' => $emitter->encoding(), 'paths' => $paths, 'logs' => $logs];
} catch (Throwable $t) {
    $result = ['ok' => false, 'pid' => getmypid(), 'n' => $n, 'error' => ['class' => get_class($t), 'message' => $t->getMessage()], 'logs' => $logs];
}
echo json_encode($result, JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE | JSON_PARTIAL_OUTPUT_ON_ERROR), "\n";
