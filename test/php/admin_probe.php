<?php
/**
 * TeamPass's admin "live stats" probe (reference §8.3), written the way
 * TeamPass's admin.queries.php does it, for test/integration/teampass-compat-access.test.ts:
 *
 *  1. generateWebSocketToken($adminId, 30) (§2.5): misc websocket_enabled must
 *     be '1'; the user's used/expired tokens are deleted; a 64-hex token valid
 *     30 s (computed by the database) is inserted.
 *  2. queryWebSocketStats(): raw TCP (stream_socket_client, 2 s connect and
 *     read timeouts), `GET /?token=… HTTP/1.1` with Host, Upgrade, Connection,
 *     Sec-WebSocket-Key and Sec-WebSocket-Version — no Origin; success if the
 *     header block contains "101"; one masked text frame {"action":"get_stats"}
 *     without request_id; at most 5 unfragmented frames read until one decodes
 *     to type "stats"; a close frame (opcode 8) or a read error gives null;
 *     then a close frame and fclose.
 *
 * Environment: TPWS_HOST, TPWS_PORT, TPWS_DSN, TPWS_DB_USER, TPWS_DB_PASSWORD,
 * TPWS_PREFIX, TPWS_USER_ID. Prints one JSON line: {token, handshake, frames, stats}
 * where `frames` lists what was read ({opcode, fin, json}) for the test to inspect.
 */

declare(strict_types=1);

function env_or(string $name, string $default = ''): string
{
    $v = getenv($name);
    return $v === false ? $default : $v;
}

function generate_ws_token(PDO $pdo, string $prefix, int $userId, int $validitySeconds): ?string
{
    $stmt = $pdo->prepare("SELECT valeur FROM `{$prefix}misc` WHERE intitule = ?");
    $stmt->execute(['websocket_enabled']);
    $enabled = $stmt->fetchColumn();
    $stmt->closeCursor();
    if ($enabled !== '1') {
        return null;
    }
    $pdo->prepare("DELETE FROM `{$prefix}websocket_tokens` WHERE user_id = ? AND (used = 1 OR expires_at < NOW())")->execute([$userId]);
    $token = bin2hex(random_bytes(32));
    $pdo->prepare("INSERT INTO `{$prefix}websocket_tokens` (user_id, token, expires_at, used) VALUES (?, ?, DATE_ADD(NOW(), INTERVAL " . $validitySeconds . " SECOND), 0)")
        ->execute([$userId, $token]);
    return $token;
}

/** Read exactly $n bytes, or null on timeout / EOF. */
function read_exact($sock, int $n): ?string
{
    $buf = '';
    while (strlen($buf) < $n) {
        $chunk = fread($sock, $n - strlen($buf));
        if ($chunk === false || $chunk === '') {
            $meta = stream_get_meta_data($sock);
            if ($meta['timed_out'] || feof($sock)) {
                return null;
            }
            continue;
        }
        $buf .= $chunk;
    }
    return $buf;
}

/** A masked client text frame (RFC 6455 §5.2). */
function masked_frame(string $payload, int $opcode = 0x1): string
{
    $len = strlen($payload);
    $head = chr(0x80 | $opcode);
    if ($len < 126) {
        $head .= chr(0x80 | $len);
    } elseif ($len < 65536) {
        $head .= chr(0x80 | 126) . pack('n', $len);
    } else {
        $head .= chr(0x80 | 127) . pack('J', $len);
    }
    $mask = random_bytes(4);
    $masked = '';
    for ($i = 0; $i < $len; $i++) {
        $masked .= $payload[$i] ^ $mask[$i % 4];
    }
    return $head . $mask . $masked;
}

/**
 * @param list<array{opcode: int, fin: bool, json: mixed}> $frames what was read
 * @return array<string, mixed>|null
 */
function query_ws_stats(string $host, int $port, string $token, ?string &$handshake, array &$frames): ?array
{
    $sock = @stream_socket_client("tcp://{$host}:{$port}", $errno, $errstr, 2);
    if ($sock === false) {
        return null;
    }
    stream_set_timeout($sock, 2);
    $key = base64_encode(random_bytes(16));
    $request = "GET /?token=" . urlencode($token) . " HTTP/1.1\r\n"
        . "Host: {$host}:{$port}\r\n"
        . "Upgrade: websocket\r\n"
        . "Connection: Upgrade\r\n"
        . "Sec-WebSocket-Key: {$key}\r\n"
        . "Sec-WebSocket-Version: 13\r\n\r\n";
    fwrite($sock, $request);

    $headers = '';
    while (strpos($headers, "\r\n\r\n") === false) {
        $line = fgets($sock, 1024);
        if ($line === false) {
            fclose($sock);
            return null;
        }
        $headers .= $line;
    }
    $handshake = strtok($headers, "\r\n") ?: '';
    if (strpos($headers, '101') === false) {
        fclose($sock);
        return null;
    }

    fwrite($sock, masked_frame('{"action":"get_stats"}'));

    $stats = null;
    $deadline = microtime(true) + 2.0;
    for ($i = 0; $i < 5 && microtime(true) < $deadline; $i++) {
        $head = read_exact($sock, 2);
        if ($head === null) {
            break;
        }
        $b0 = ord($head[0]);
        $b1 = ord($head[1]);
        $fin = ($b0 & 0x80) !== 0;
        $opcode = $b0 & 0x0f;
        $len = $b1 & 0x7f;
        if ($len === 126) {
            $ext = read_exact($sock, 2);
            if ($ext === null) {
                break;
            }
            $len = unpack('n', $ext)[1];
        } elseif ($len === 127) {
            $ext = read_exact($sock, 8);
            if ($ext === null) {
                break;
            }
            $len = unpack('J', $ext)[1];
        }
        $payload = $len > 0 ? read_exact($sock, $len) : '';
        if ($payload === null) {
            break;
        }
        $decoded = json_decode($payload, true);
        $frames[] = ['opcode' => $opcode, 'fin' => $fin, 'json' => $decoded];
        if ($opcode === 0x8) {
            break;
        }
        if (is_array($decoded) && ($decoded['type'] ?? null) === 'stats') {
            $stats = $decoded['stats'] ?? null;
            break;
        }
    }

    fwrite($sock, masked_frame(pack('n', 1000), 0x8));
    fclose($sock);
    return is_array($stats) ? $stats : null;
}

$prefix = env_or('TPWS_PREFIX', 'teampass_');
$pdo = new PDO(env_or('TPWS_DSN'), env_or('TPWS_DB_USER'), env_or('TPWS_DB_PASSWORD'), [PDO::ATTR_ERRMODE => PDO::ERRMODE_EXCEPTION]);
$token = generate_ws_token($pdo, $prefix, (int) env_or('TPWS_USER_ID'), 30);
$handshake = null;
$frames = [];
$stats = $token === null ? null : query_ws_stats(env_or('TPWS_HOST', '127.0.0.1'), (int) env_or('TPWS_PORT', '8080'), $token, $handshake, $frames);
echo json_encode(['token' => $token, 'handshake' => $handshake, 'frames' => $frames, 'stats' => $stats], JSON_UNESCAPED_SLASHES), "\n";
