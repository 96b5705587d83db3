<?php
/**
 * A faithful re-implementation, on PDO, of what TeamPass 3.2's own
 * emitWebSocketEvent() writes (app/sources/main.functions.php, steps 2-6;
 * step 1, the notification centre, is TeamPass's and stays outside both
 * this and the drop-in). MeekroDB's DB::insert() becomes a
 * prepared INSERT of the same four columns; created_at and processed take
 * their defaults, event_uuid stays NULL.
 */

declare(strict_types=1);

function teampass_reference_emit(PDO $pdo, string $prefix, string $eventType, string $targetType, ?int $targetId, array $payload, ?int $excludeUserId = null): bool
{
    $q = $pdo->getAttribute(PDO::ATTR_DRIVER_NAME) === 'mysql' ? '`' : '"';
    // 2. misc websocket_enabled === '1'; any DB exception returns false.
    try {
        $stmt = $pdo->prepare("SELECT valeur FROM {$q}{$prefix}misc{$q} WHERE intitule = ?");
        $stmt->execute(['websocket_enabled']);
        $wsEnabled = $stmt->fetchColumn();
        $stmt->closeCursor();
        if ($wsEnabled !== '1') {
            return false;
        }
    } catch (Exception $e) {
        return false;
    }

    // 3. the target type.
    if (!in_array($targetType, ['user', 'folder', 'kb', 'broadcast'], true)) {
        return false;
    }

    // 4. exclude_user_id, when given.
    if ($excludeUserId !== null) {
        $payload['exclude_user_id'] = $excludeUserId;
    }

    // 5. always server_timestamp.
    $payload['server_timestamp'] = time();

    // 6. the INSERT.
    try {
        $stmt = $pdo->prepare("INSERT INTO {$q}{$prefix}websocket_events{$q} (event_type, target_type, target_id, payload) VALUES (?, ?, ?, ?)");
        $stmt->bindValue(1, $eventType);
        $stmt->bindValue(2, $targetType);
        $stmt->bindValue(3, $targetId, $targetId === null ? PDO::PARAM_NULL : PDO::PARAM_INT);
        $stmt->bindValue(4, json_encode($payload, JSON_UNESCAPED_UNICODE | JSON_UNESCAPED_SLASHES));
        $stmt->execute();
        return true;
    } catch (Exception $e) {
        return false;
    }
}
