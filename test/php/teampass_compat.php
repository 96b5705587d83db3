<?php
/**
 * Byte compatibility: for each event of TPWS_EVENTS, TeamPass's own INSERT
 * (teampass_reference.php) and the drop-in run back to back within the same
 * second (so server_timestamp is equal); then both rows are read back.
 * Prints {"cases": [{"reference": row, "dropin": row, "dropin_id": id}...]},
 * with every column base64-encoded so bytes survive the trip.
 */

declare(strict_types=1);

require __DIR__ . '/lib.php';
require __DIR__ . '/teampass_setup.php';
require __DIR__ . '/teampass_reference.php';

configure_dropin();
$pdo = test_pdo();
$prefix = (string) env('TPWS_PREFIX', 'teampass_');
$q = $pdo->getAttribute(PDO::ATTR_DRIVER_NAME) === 'mysql' ? '`' : '"';
$table = "{$q}{$prefix}websocket_events{$q}";

function fetch_row(PDO $pdo, string $sql, array $args): ?array
{
    $stmt = $pdo->prepare($sql);
    $stmt->execute($args);
    $row = $stmt->fetch(PDO::FETCH_ASSOC);
    if ($row === false) {
        return null;
    }
    return array_map(static fn ($v) => $v === null ? null : base64_encode((string) $v), $row);
}

$cases = [];
foreach (events_from_env() as $ev) {
    $payload = decode_payload($ev['payload'] ?? []);
    for ($try = 0; $try < 5; $try++) {
        // Not too close to a second boundary: both calls should see the same time().
        if (fmod(microtime(true), 1.0) > 0.9 || $try > 0) {
            time_sleep_until(floor(microtime(true)) + 1.01);
        }
        $t0 = time();
        $refOk = teampass_reference_emit($pdo, $prefix, $ev['event_type'], $ev['target_type'], $ev['target_id'] ?? null, $payload, $ev['exclude_user_id'] ?? null);
        $refId = $pdo->lastInsertId();
        $dropOk = tpws_emit_websocket_event($ev['event_type'], $ev['target_type'], $ev['target_id'] ?? null, $payload, $ev['exclude_user_id'] ?? null);
        if (time() === $t0) {
            break;
        }
    }
    $cols = 'event_type, target_type, target_id, payload, processed, event_uuid';
    $cases[] = [
        'reference_ok' => $refOk,
        'dropin_ok' => $dropOk,
        'dropin_id' => TpWs\TeamPass::lastEventId(),
        'reference' => fetch_row($pdo, "SELECT {$cols} FROM {$table} WHERE id = ?", [$refId]),
        'dropin' => fetch_row($pdo, "SELECT {$cols} FROM {$table} WHERE event_uuid = ?", [TpWs\TeamPass::lastEventId()]),
    ];
}
out(['ok' => true, 'cases' => $cases, 'fallbacks' => count(paths())]);
