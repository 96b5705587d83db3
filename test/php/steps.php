<?php
/**
 * A long-running PHP worker: one Emitter (one persistent connection) runs the
 * steps of TPWS_STEPS in order, printing one JSON line per step:
 *   {"emit": {event}}      -> {"step": i, "ok": true, "id": "...", "path": "socket"|"table"} or {"ok": false, "error": {...}}
 *   {"wait": "label"}      -> {"step": i, "waiting": "label"}, then reads one line from stdin
 *   {"sleep_ms": n}
 * and a last line {"done": true, "logs": [...]}.
 */

declare(strict_types=1);

require __DIR__ . '/lib.php';

$emitter = new TpWs\Emitter(emitter_options());
$steps = json_decode((string) env('TPWS_STEPS', '[]'), true, 512, JSON_THROW_ON_ERROR);
foreach ($steps as $i => $step) {
    if (isset($step['emit'])) {
        $before = count(paths());
        try {
            $id = emit_one($emitter, $step['emit']);
            $line = ['step' => $i, 'ok' => true, 'id' => $id, 'path' => count(paths()) > $before ? 'table' : 'socket'];
        } catch (Throwable $t) {
            $line = ['step' => $i, 'ok' => false, 'error' => describe_error($t)];
        }
    } elseif (isset($step['wait'])) {
        echo json_encode(['step' => $i, 'waiting' => $step['wait']]), "\n";
        fgets(STDIN);
        continue;
    } elseif (isset($step['sleep_ms'])) {
        usleep((int) $step['sleep_ms'] * 1000);
        continue;
    } else {
        throw new RuntimeException('unknown step ' . json_encode($step));
    }
    echo json_encode($line, JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE), "\n";
}
echo json_encode(['done' => true, 'logs' => $GLOBALS['tpws_logs']], JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE | JSON_PARTIAL_OUTPUT_ON_ERROR), "\n";
