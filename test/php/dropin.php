<?php
/**
 * The TeamPass drop-in: tpws_emit_websocket_event() for each event of
 * TPWS_EVENTS. Prints {"results": [bool...], "ids": [last event id or null...]}.
 * Its error_log lines go to stderr.
 */

declare(strict_types=1);

require __DIR__ . '/lib.php';
require __DIR__ . '/teampass_setup.php';

configure_dropin();
$results = [];
$ids = [];
foreach (events_from_env() as $ev) {
    $before = TpWs\TeamPass::lastEventId();
    $results[] = tpws_emit_websocket_event($ev['event_type'], $ev['target_type'], $ev['target_id'] ?? null, decode_payload($ev['payload'] ?? []), $ev['exclude_user_id'] ?? null);
    $after = TpWs\TeamPass::lastEventId();
    $ids[] = $after !== $before ? $after : null;
}
out(['ok' => true, 'results' => $results, 'ids' => $ids, 'fallbacks' => count(paths())]);
