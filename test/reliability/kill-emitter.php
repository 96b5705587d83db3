<?php
/**
 * A PHP application emitting events with TpWs\Emitter in default mode
 * (socket, else table) while the daemon is SIGKILLed and restarted
 * (test/reliability/kill-under-load.test.ts). One Emitter for the process,
 * as a long-running worker keeps it.
 *
 *   TPWS_SOCKET, TPWS_DSN, TPWS_DB_USER, TPWS_DB_PASSWORD, TPWS_TABLE
 *   TPWS_PLAN     path of a JSON list of {k, target_type, target_id, exclude}
 *   TPWS_GAP_US   pause between two events, µs
 *   TPWS_UNTIL_MS no event is started after this time (Unix ms): the rest of the plan is not sent
 *
 * Prints one JSON line per event, as soon as emit() returns:
 *   {"k": …, "id": …, "path": "socket"|"table", "journal": "written"|"pending"|"dropped"|"duplicate", "db_reconnected": bool}
 * (`journal` for the socket path: what the ack said; for the table path,
 * `duplicate` when the row existed already; `db_reconnected`: the emitter
 * replaced a broken database handle) or {"k": …, "error": …}.
 * What emit() did is read from the emitter's log lines (`tp-ws: …`), the
 * only place it says which path an event took.
 */

declare(strict_types=1);

require_once __DIR__ . '/../../emitter/php/TpWsEmitter.php';

$log = [];
$env = static fn (string $n): ?string => getenv($n) === false ? null : (string) getenv($n);

$emitter = new TpWs\Emitter([
    'socket' => $env('TPWS_SOCKET'),
    'dsn' => $env('TPWS_DSN'),
    'user' => $env('TPWS_DB_USER'),
    'password' => $env('TPWS_DB_PASSWORD'),
    'table' => $env('TPWS_TABLE'),
    'timeout_ms' => 2000,
    'connect_timeout_ms' => 500,
    'logger' => static function (string $level, string $message, array $context) use (&$log): void {
        $log[] = $message;
    },
]);

$plan = json_decode((string) file_get_contents((string) $env('TPWS_PLAN')), true, 16, JSON_THROW_ON_ERROR);
$gapUs = (int) $env('TPWS_GAP_US');
$untilMs = (int) $env('TPWS_UNTIL_MS');

foreach ($plan as $ev) {
    if (microtime(true) * 1000 >= $untilMs) {
        break;
    }
    $log = [];
    try {
        $id = $emitter->emit('kill_test', $ev['target_type'], $ev['target_id'], ['k' => $ev['k']], $ev['exclude']);
    } catch (Throwable $t) {
        echo json_encode(['k' => $ev['k'], 'error' => get_class($t) . ': ' . $t->getMessage()]), "\n";
        continue;
    }
    $path = 'socket';
    $journal = 'written';
    $reconnected = false;
    foreach ($log as $m) {
        $reconnected = $reconnected || str_contains($m, 'broken database handle; reconnecting');
        if (str_contains($m, 'socket failed; the table already has the event')) {
            [$path, $journal] = ['table', 'duplicate'];
        } elseif (str_contains($m, 'socket failed; event written to the table')) {
            [$path, $journal] = ['table', 'written'];
        } elseif (str_contains($m, 'event delivered; the daemon journals it later')) {
            $journal = 'pending';
        } elseif (str_contains($m, 'event delivered, but the daemon could not keep it')) {
            $journal = 'dropped';
        }
    }
    echo json_encode(['k' => $ev['k'], 'id' => $id, 'path' => $path, 'journal' => $journal, 'db_reconnected' => $reconnected]), "\n";
    if ($gapUs > 0) {
        usleep($gapUs);
    }
}
