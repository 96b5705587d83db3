<?php
/**
 * Default mode: emit every event of TPWS_EVENTS with one Emitter.
 * Prints {"ok": true, "ids": [...], "fallbacks": n} or {"ok": false, "error": {...}}.
 */

declare(strict_types=1);

require __DIR__ . '/lib.php';

$ids = [];
try {
    $emitter = new TpWs\Emitter(emitter_options());
    foreach (events_from_env() as $ev) {
        $ids[] = emit_one($emitter, $ev);
    }
    out(['ok' => true, 'ids' => $ids, 'encoding' => $emitter->encoding(), 'fallbacks' => count(paths())]);
} catch (Throwable $t) {
    out(['ok' => false, 'ids' => $ids, 'error' => describe_error($t)]);
}
