<?php
/**
 * Outbox mode with the application's own PDO and transaction. TPWS_OUTBOX_PLAN:
 *   commit               BEGIN, emit TPWS_EVENTS, COMMIT, flush()
 *   rollback             BEGIN, emit TPWS_EVENTS, ROLLBACK, flush()
 *   rollback_then_commit BEGIN, emit event 0, ROLLBACK; BEGIN, emit event 1, COMMIT; one flush()
 *   flush_in_tx          BEGIN, emit, flush() (must throw LogicException), COMMIT, flush()
 * Prints {"ok": true, "ids": [...], "flushed": n, ...}.
 */

declare(strict_types=1);

require __DIR__ . '/lib.php';

$plan = (string) env('TPWS_OUTBOX_PLAN', 'commit');
$events = events_from_env();
$pdo = test_pdo();
$emitter = new TpWs\Emitter(emitter_options(['mode' => 'outbox', 'pdo' => $pdo]));
$result = ['ok' => true, 'plan' => $plan, 'ids' => []];

try {
    switch ($plan) {
        case 'commit':
        case 'rollback':
            $pdo->beginTransaction();
            foreach ($events as $ev) {
                $result['ids'][] = emit_one($emitter, $ev);
            }
            $result['pending_before'] = count($emitter->pendingIds());
            $plan === 'commit' ? $pdo->commit() : $pdo->rollBack();
            $result['flushed'] = $emitter->flush();
            break;
        case 'rollback_then_commit':
            $pdo->beginTransaction();
            $result['ids'][] = emit_one($emitter, $events[0]);
            $pdo->rollBack();
            $pdo->beginTransaction();
            $result['ids'][] = emit_one($emitter, $events[1]);
            $pdo->commit();
            $result['pending_before'] = count($emitter->pendingIds());
            $result['flushed'] = $emitter->flush();
            break;
        case 'flush_in_tx':
            $pdo->beginTransaction();
            foreach ($events as $ev) {
                $result['ids'][] = emit_one($emitter, $ev);
            }
            try {
                $emitter->flush();
                $result['logic_exception'] = null;
            } catch (LogicException $e) {
                $result['logic_exception'] = $e->getMessage();
            }
            $pdo->commit();
            $result['flushed'] = $emitter->flush();
            break;
        default:
            throw new RuntimeException("unknown plan {$plan}");
    }
    $result['pending_after'] = count($emitter->pendingIds());
} catch (Throwable $t) {
    $result['ok'] = false;
    $result['error'] = describe_error($t);
}
out($result);
