<?php

/**
 * tp-ws PHP emitter: publish real-time events to the tp-ws daemon.
 *
 * One file, PHP >= 8.1, no dependency. Optional: ext-msgpack (a smaller, faster
 * wire encoding), ext-pdo with pdo_mysql or pdo_sqlite (the table fallback and
 * outbox mode). Documentation: docs/emitter-php.md; wire protocol:
 * docs/ingest.md.
 *
 *   require_once '/path/to/TpWsEmitter.php';
 *   $emitter = new \TpWs\Emitter([
 *       'socket' => '/run/tp-ws/ingest.sock',
 *       'dsn' => 'mysql:host=127.0.0.1;dbname=teampass;charset=utf8mb4',
 *       'user' => 'teampass', 'password' => $password,
 *   ]);
 *   $id = $emitter->emit('item_updated', 'folder', 5, ['item_id' => 42]);
 *
 * Default mode: the event goes over a Unix-socket connection kept open per PHP
 * process (persistent across PHP-FPM requests), and the emitter waits for the
 * daemon's ack. Without a socket, an ack or a usable answer, the event is
 * INSERTed into the events table with the same id, where the daemon's poller
 * finds it. Both failing throws EmitFailedException: an event is never lost
 * silently.
 *
 * Outbox mode: emit() INSERTs the row inside the caller's transaction; after
 * COMMIT, flush() tells the daemon over the socket so the events are
 * delivered at once (the poller delivers them anyway if the socket is down).
 *
 * TeamPass: \TpWs\emit_websocket_event() (and the global
 * tpws_emit_websocket_event()) has emitWebSocketEvent()'s signature, payload
 * additions and bool result; see docs/teampass.md.
 */

declare(strict_types=1);

namespace TpWs {

    /**
     * The event breaks a rule (event type, target, ids, payload) or the daemon
     * refused it (TPWS_ERR_INVALID_EVENT, TPWS_ERR_BAD_FRAME,
     * TPWS_ERR_FRAME_TOO_LARGE, TPWS_ERR_BATCH_TOO_LARGE). Nothing was written;
     * retrying the same event cannot succeed.
     */
    class InvalidEventException extends \InvalidArgumentException
    {
        /** `TPWS_ERR_…` code when the daemon refused the event; null for a local check. */
        public readonly ?string $errorCode;

        public function __construct(string $message, ?string $errorCode = null, ?\Throwable $previous = null)
        {
            parent::__construct($message, 0, $previous);
            $this->errorCode = $errorCode;
        }
    }

    /**
     * Neither the socket nor the table took the event: it was NOT delivered and
     * is not stored. Carries both causes (`socketError`, `tableError`, either
     * may be null when that path was not configured or not tried).
     */
    class EmitFailedException extends \RuntimeException
    {
        public function __construct(
            string $message,
            public readonly string $eventId,
            public readonly ?\Throwable $socketError,
            public readonly ?\Throwable $tableError,
        ) {
            parent::__construct($message, 0, $tableError ?? $socketError);
        }
    }

    /** Why the socket path did not take an event (the caller falls back to the table). */
    final class SocketException extends \RuntimeException
    {
    }

    /** The connection died under us (EOF, failed write): worth one reconnect. */
    final class ConnectionLostException extends \RuntimeException
    {
    }

    /** A database error of the table path, with the password-free message of the driver. */
    final class TableException extends \RuntimeException
    {
        public function __construct(string $message, public readonly string $sqlState = '')
        {
            parent::__construct($message);
        }
    }

    final class Emitter
    {
        public const VERSION = '0.1.0';
        public const TARGET_TYPES = ['user', 'folder', 'kb', 'broadcast'];
        private const INT_MAX = 4294967295;
        private const JSON_FLAGS = \JSON_UNESCAPED_UNICODE | \JSON_UNESCAPED_SLASHES | \JSON_THROW_ON_ERROR;
        /** Error acks after which retrying the same event cannot help. */
        private const INVALID_CODES = ['TPWS_ERR_INVALID_EVENT', 'TPWS_ERR_BAD_FRAME', 'TPWS_ERR_FRAME_TOO_LARGE', 'TPWS_ERR_BATCH_TOO_LARGE'];
        private const MAX_BATCH = 1000;
        private const MAX_ACK_BYTES = 16777216;

        private const DEFAULTS = [
            'socket' => '/run/tp-ws/ingest.sock',
            'pdo' => null,
            'dsn' => null,
            'user' => null,
            'password' => null,
            'pdo_options' => [],
            'table' => 'teampass_websocket_events',
            'timeout_ms' => 1000,
            'connect_timeout_ms' => 500,
            'db_timeout_s' => 2,
            'mode' => 'default',
            'encoding' => 'auto',
            'max_payload_bytes' => 65536,
            'logger' => null,
        ];

        /**
         * Open connections of this process, by encoding and path:
         * ['stream' => resource, 'buf' => unread bytes].
         * @var array<string, array{stream: resource, buf: string}>
         */
        private static array $connections = [];

        private ?string $socket;
        private string $table;
        private string $mode;
        private string $encoding;
        private float $timeoutS;
        private float $connectTimeoutS;
        private int $maxPayloadBytes;
        /** @var (callable(string, string, array<string, mixed>): void)|null */
        private $logger;
        private ?\PDO $pdo;
        private bool $ownPdo = false;
        private ?string $dsn;
        private ?string $user;
        /** @var string|\Closure|null never printed: see __debugInfo() */
        private string|\Closure|null $password;
        /** @var array<int, mixed> */
        private array $pdoOptions;
        private int $dbTimeoutS;
        private ?\PDOStatement $insertStmt = null;
        private ?\PDO $insertStmtPdo = null;
        private bool $withUuidColumn = true;
        /** Outbox mode: events INSERTed by emit() and not flushed yet, by id. @var array<string, array<string, mixed>> */
        private array $pending = [];

        /**
         * @param array<string, mixed> $options see docs/emitter-php.md:
         *   socket, pdo | dsn + user + password, pdo_options, table, timeout_ms,
         *   connect_timeout_ms, db_timeout_s, mode ('default'|'outbox'),
         *   encoding ('auto'|'ndjson'|'msgpack'), max_payload_bytes, logger.
         */
        public function __construct(#[\SensitiveParameter] array $options = [])
        {
            $unknown = array_diff_key($options, self::DEFAULTS);
            if ($unknown !== []) {
                throw new \InvalidArgumentException('tp-ws: unknown option(s): ' . implode(', ', array_keys($unknown)));
            }
            $o = $options + self::DEFAULTS;

            $socket = $o['socket'];
            if ($socket !== null && !is_string($socket)) {
                throw new \InvalidArgumentException('tp-ws: option socket must be a path, or null/"" to disable the socket');
            }
            $this->socket = ($socket === null || $socket === '') ? null : $socket;

            if (!is_string($o['table']) || preg_match('/^[A-Za-z0-9_$]{1,64}(\.[A-Za-z0-9_$]{1,64})?$/D', $o['table']) !== 1) {
                throw new \InvalidArgumentException('tp-ws: option table must be a table name ([A-Za-z0-9_$], optionally schema.table)');
            }
            $this->table = $o['table'];

            if (!in_array($o['mode'], ['default', 'outbox'], true)) {
                throw new \InvalidArgumentException("tp-ws: option mode must be 'default' or 'outbox'");
            }
            $this->mode = $o['mode'];

            $encoding = $o['encoding'];
            if ($encoding === 'auto') {
                $encoding = function_exists('msgpack_pack') ? 'msgpack' : 'ndjson';
            }
            if (!in_array($encoding, ['ndjson', 'msgpack'], true)) {
                throw new \InvalidArgumentException("tp-ws: option encoding must be 'auto', 'ndjson' or 'msgpack'");
            }
            if ($encoding === 'msgpack' && !function_exists('msgpack_pack')) {
                throw new \InvalidArgumentException("tp-ws: encoding 'msgpack' needs ext-msgpack, which is not loaded");
            }
            $this->encoding = $encoding;

            $this->timeoutS = self::positiveNumber($o['timeout_ms'], 'timeout_ms') / 1000;
            $this->connectTimeoutS = self::positiveNumber($o['connect_timeout_ms'], 'connect_timeout_ms') / 1000;
            $this->dbTimeoutS = max(1, (int) ceil(self::positiveNumber($o['db_timeout_s'], 'db_timeout_s')));
            $this->maxPayloadBytes = (int) self::positiveNumber($o['max_payload_bytes'], 'max_payload_bytes');

            if ($o['logger'] !== null && !is_callable($o['logger'])) {
                throw new \InvalidArgumentException('tp-ws: option logger must be callable(string $level, string $message, array $context)');
            }
            $this->logger = $o['logger'];

            if ($o['pdo'] !== null && !($o['pdo'] instanceof \PDO)) {
                throw new \InvalidArgumentException('tp-ws: option pdo must be a PDO instance');
            }
            $this->pdo = $o['pdo'];
            $this->dsn = $o['dsn'] === null ? null : (string) $o['dsn'];
            $this->user = $o['user'] === null ? null : (string) $o['user'];
            $password = $o['password'];
            if ($password !== null && !is_string($password) && !($password instanceof \Closure)) {
                throw new \InvalidArgumentException('tp-ws: option password must be a string or a Closure returning one');
            }
            $this->password = $password;
            if (!is_array($o['pdo_options'])) {
                throw new \InvalidArgumentException('tp-ws: option pdo_options must be an array');
            }
            $this->pdoOptions = $o['pdo_options'];

            if ($this->mode === 'outbox' && $this->pdo === null) {
                // Its INSERT must join the application's transaction: only the application's PDO can.
                throw new \InvalidArgumentException("tp-ws: mode 'outbox' needs the application's PDO (option pdo)");
            }
            if ($this->socket === null && $this->pdo === null && $this->dsn === null) {
                throw new \InvalidArgumentException('tp-ws: neither a socket nor a database (pdo or dsn) is configured');
            }
        }

        public function __destruct()
        {
            if ($this->pending !== []) {
                $this->log('warning', 'outbox events were never flushed; the poller delivers the committed ones', ['count' => count($this->pending)]);
            }
        }

        /** Hide the password (and the PDO) from var_dump() and print_r(). */
        public function __debugInfo(): array
        {
            return [
                'socket' => $this->socket,
                'table' => $this->table,
                'mode' => $this->mode,
                'encoding' => $this->encoding,
                'timeout_ms' => (int) round($this->timeoutS * 1000),
                'dsn' => $this->dsn === null ? null : self::redactDsn($this->dsn),
                'pending' => count($this->pending),
            ];
        }

        public function encoding(): string
        {
            return $this->encoding;
        }

        public function mode(): string
        {
            return $this->mode;
        }

        /**
         * Publish one event; returns its id (a UUIDv7).
         *
         * Default mode: socket, else table (same id). Outbox mode: INSERT now (in
         * the caller's transaction, if one is open); flush() after COMMIT.
         *
         * @param array<string|int, mixed> $payload a JSON object: an associative array (or [])
         * @throws InvalidEventException the event breaks a rule; nothing written
         * @throws EmitFailedException neither the socket nor the table took it
         */
        public function emit(string $eventType, string $targetType, ?int $targetId, array $payload, ?int $excludeUserId = null): string
        {
            $event = $this->buildEvent($eventType, $targetType, $targetId, $payload, $excludeUserId);
            $id = $event['id'];

            if ($this->mode === 'outbox') {
                try {
                    $this->insertRow($event);
                } catch (\Throwable $e) {
                    throw new EmitFailedException("tp-ws: outbox insert of event {$id} failed: " . $e->getMessage(), $id, null, $e);
                }
                $this->pending[$id] = $event;
                return $id;
            }

            $socketError = null;
            if ($this->socket !== null) {
                try {
                    $ack = $this->roundTrip($this->encodeFrame($event), [$id], false);
                    $this->checkAck($ack, $id);
                    return $id;
                } catch (InvalidEventException $e) {
                    throw $e;
                } catch (SocketException | ConnectionLostException $e) {
                    $socketError = $e;
                }
            } else {
                $socketError = new SocketException('no socket configured');
            }

            if ($this->pdo === null && $this->dsn === null) {
                throw new EmitFailedException("tp-ws: event {$id} not delivered: socket: {$socketError->getMessage()}; table: no database configured", $id, $socketError, null);
            }
            try {
                $duplicate = $this->insertRow($event);
            } catch (\Throwable $e) {
                $this->log('error', 'event lost: socket and table both failed', ['id' => $id, 'event_type' => $eventType, 'socket_error' => $socketError->getMessage(), 'table_error' => $e->getMessage()]);
                throw new EmitFailedException("tp-ws: event {$id} not delivered: socket: {$socketError->getMessage()}; table: {$e->getMessage()}", $id, $socketError, $e);
            }
            $this->log($this->socket === null ? 'debug' : 'warning', $duplicate ? 'socket failed; the table already has the event (ack lost)' : 'socket failed; event written to the table', [
                'id' => $id, 'event_type' => $eventType, 'socket_error' => $socketError->getMessage(), 'path' => 'table',
            ]);
            return $id;
        }

        /**
         * TeamPass stores an event whose user or folder id is 0 or null (a
         * root-level folder's parent is 0) although no daemon ever delivers it,
         * and reports success; the drop-in keeps that result. The row goes
         * straight to the table, where the poller marks it rejected (logged).
         * @param array<string|int, mixed> $payload
         */
        public function storeUndeliverable(string $eventType, string $targetType, ?int $targetId, array $payload): string
        {
            $event = [
                'id' => self::uuid7(),
                'event_type' => $eventType,
                'target_type' => $targetType,
                'target_id' => $targetId,
                '_json' => $payload === [] ? '{}' : json_encode($payload, self::JSON_FLAGS),
            ];
            $this->insertRow($event);
            return $event['id'];
        }

        /**
         * Outbox mode, after COMMIT: send the committed events of this emitter to
         * the daemon in one batch so they are delivered now (the journal then
         * marks their rows processed). Events whose row is not in the table (the
         * transaction was rolled back) are dropped, never sent. If the socket is
         * down nothing is lost: the poller delivers the rows. Returns the number
         * of events the daemon acknowledged.
         *
         * @throws \LogicException when called inside an open transaction
         */
        public function flush(): int
        {
            if ($this->pending === []) {
                return 0;
            }
            if ($this->pdo !== null && $this->pdo->inTransaction()) {
                throw new \LogicException('tp-ws: flush() must be called after COMMIT (or ROLLBACK), not inside the transaction');
            }
            $pending = $this->pending;
            $this->pending = [];

            try {
                $committed = $this->existingIds(array_keys($pending));
            } catch (\Throwable $e) {
                $this->log('warning', 'outbox flush: cannot check which events were committed; leaving them to the poller', ['count' => count($pending), 'error' => $e->getMessage()]);
                return 0;
            }
            $events = [];
            foreach ($pending as $id => $event) {
                if (isset($committed[$id])) {
                    $events[] = $event;
                }
            }
            $dropped = count($pending) - count($events);
            if ($dropped > 0) {
                $this->log('debug', 'outbox flush: events of a rolled-back transaction dropped', ['count' => $dropped]);
            }
            if ($events === [] || $this->socket === null) {
                return 0;
            }

            $acked = 0;
            foreach (array_chunk($events, self::MAX_BATCH) as $chunk) {
                $ids = array_column($chunk, 'id');
                try {
                    $ack = $this->roundTrip($this->encodeFrame($chunk), $ids, true);
                } catch (SocketException | ConnectionLostException $e) {
                    $this->log('info', 'outbox flush: socket unavailable; the poller delivers the rows', ['count' => count($ids), 'error' => $e->getMessage()]);
                    return $acked;
                }
                if (!isset($ack['results']) || !is_array($ack['results'])) {
                    $this->log('warning', 'outbox flush: batch refused by the daemon; the poller handles the rows', ['error' => $ack['error'] ?? null]);
                    continue;
                }
                foreach ($ack['results'] as $r) {
                    if (is_array($r) && ($r['ok'] ?? false) === true) {
                        $acked++;
                    } else {
                        $this->log('warning', 'outbox flush: event refused by the daemon', ['id' => is_array($r) ? ($r['id'] ?? null) : null, 'error' => is_array($r) ? ($r['error'] ?? null) : null]);
                    }
                }
            }
            return $acked;
        }

        /** Outbox mode: forget the events emitted since the last flush (e.g. after a ROLLBACK). */
        public function discard(): void
        {
            $this->pending = [];
        }

        /** Outbox mode: ids emitted and not flushed yet. @return list<string> */
        public function pendingIds(): array
        {
            return array_keys($this->pending);
        }

        /** Close this process's socket connection(s) (they reopen on the next emit). */
        public static function disconnect(): void
        {
            foreach (array_keys(self::$connections) as $key) {
                self::dropConnection($key);
            }
        }

        /**
         * A UUIDv7 (RFC 9562): 48-bit Unix milliseconds, version 7, a 12-bit
         * sequence (random start, +1 within the same millisecond, so the ids
         * of one process increase), the variant bits, 62 random bits.
         */
        public static function uuid7(): string
        {
            static $lastMs = 0;
            static $seq = 0;
            $ms = (int) floor(microtime(true) * 1000);
            if ($ms <= $lastMs) {
                $seq++;
                if ($seq > 0xfff) {
                    $lastMs++;
                    $seq = random_int(0, 0x7ff);
                }
                $ms = $lastMs;
            } else {
                $lastMs = $ms;
                $seq = random_int(0, 0x7ff);
            }
            $rand = random_bytes(8);
            $time = str_pad(dechex($ms), 12, '0', STR_PAD_LEFT);
            return sprintf(
                '%s-%s-%04x-%02x%s-%s',
                substr($time, 0, 8),
                substr($time, 8, 4),
                0x7000 | $seq,
                (ord($rand[0]) & 0x3f) | 0x80,
                bin2hex($rand[1]),
                bin2hex(substr($rand, 2, 6)),
            );
        }

        // ---- the event ------------------------------------------------------

        /**
         * Validate like the daemon (docs/ingest.md) and build the wire event.
         * @param array<string|int, mixed> $payload
         * @return array<string, mixed>
         */
        private function buildEvent(string $eventType, string $targetType, ?int $targetId, array $payload, ?int $excludeUserId): array
        {
            if (preg_match('/^[\x21-\x7e]{1,50}$/D', $eventType) !== 1) {
                throw new InvalidEventException('event_type: must be a string of 1-50 ASCII characters from ! to ~ (no spaces or control characters)');
            }
            if (!in_array($targetType, self::TARGET_TYPES, true)) {
                throw new InvalidEventException('target_type: must be one of ' . implode(', ', self::TARGET_TYPES));
            }
            if ($targetType === 'user' || $targetType === 'folder') {
                if ($targetId === null || $targetId < 1 || $targetId > self::INT_MAX) {
                    throw new InvalidEventException('target_id: must be an integer from 1 to ' . self::INT_MAX . " for target_type {$targetType}");
                }
            } else {
                $targetId = null; // kb and broadcast have no target id (TeamPass stores NULL)
            }
            if ($excludeUserId !== null) {
                if ($excludeUserId < 0 || $excludeUserId > self::INT_MAX) {
                    throw new InvalidEventException('exclude_user_id: must be an integer from 0 (nobody) to ' . self::INT_MAX);
                }
                // TeamPass's client reads it inside the payload; the daemon keeps the two in step.
                if (($payload['exclude_user_id'] ?? null) !== $excludeUserId) {
                    $payload['exclude_user_id'] = $excludeUserId;
                }
            }
            if ($payload !== [] && array_is_list($payload)) {
                throw new InvalidEventException('payload: must be a JSON object (an associative array), not a list');
            }
            try {
                $json = $payload === [] ? '{}' : json_encode($payload, self::JSON_FLAGS);
            } catch (\JsonException $e) {
                throw new InvalidEventException('payload: must be encodable as JSON: ' . $e->getMessage(), null, $e);
            }
            if (strlen($json) > $this->maxPayloadBytes) {
                throw new InvalidEventException("payload: must be at most {$this->maxPayloadBytes} bytes encoded (got " . strlen($json) . ')');
            }
            $event = [
                'id' => self::uuid7(),
                'event_type' => $eventType,
                'target_type' => $targetType,
                'target_id' => $targetId,
                'payload' => $payload,
                // No created_at: the daemon stamps the event when it receives it
                // (within timeout_ms of now), and the row gets the table's default.
                '_json' => $json,
            ];
            if ($excludeUserId !== null) {
                $event['exclude_user_id'] = $excludeUserId;
            }
            return $event;
        }

        /**
         * One event, or a batch (a list of events), as one wire frame.
         * @param array<string, mixed>|list<array<string, mixed>> $what
         */
        private function encodeFrame(array $what): string
        {
            $batch = array_is_list($what);
            $events = $batch ? $what : [$what];
            $wire = [];
            foreach ($events as $e) {
                // The payload travels as its JSON text: the daemon keeps it byte for
                // byte, so its journal rows equal what json_encode() would insert.
                $e['payload'] = $e['_json'];
                unset($e['_json']);
                $wire[] = $e;
            }
            if ($this->encoding === 'ndjson') {
                return json_encode($batch ? $wire : $wire[0], self::JSON_FLAGS) . "\n";
            }
            $body = msgpack_pack($batch ? $wire : $wire[0]);
            return pack('N', strlen($body)) . $body;
        }

        // ---- the socket -----------------------------------------------------

        /**
         * Write one frame and read its ack, within timeout_ms.
         *
         * A connection found dead before the frame is written (the daemon
         * restarted: EOF seen by connection(), or a failed write) is replaced
         * once and the frame sent again: the daemon cannot have read it. Once
         * the frame is written, a lost connection or a timeout is final: the
         * caller falls back to the table, whose unique event_uuid tells whether
         * the daemon journaled the event after all. The connection is then
         * closed, so a late ack can never be taken for the answer to a later
         * frame.
         *
         * @param list<string> $ids the frame's event ids, to recognise its ack
         * @return array<string, mixed> the ack
         */
        private function roundTrip(string $frame, array $ids, bool $batch): array
        {
            $deadline = hrtime(true) / 1e9 + $this->timeoutS;
            $key = $this->encoding . ':' . $this->socket;
            for ($attempt = 0; ; $attempt++) {
                $stream = $this->connection($key, $attempt > 0);
                try {
                    $this->writeAll($stream, $frame, $deadline);
                } catch (ConnectionLostException $e) {
                    self::dropConnection($key);
                    if ($attempt === 0) {
                        $this->log('info', 'ingest connection lost; reconnecting once', ['error' => $e->getMessage()]);
                        continue;
                    }
                    throw $e;
                } catch (SocketException $e) {
                    self::dropConnection($key);
                    throw $e;
                }
                try {
                    return $this->readAck($key, $ids, $batch, $deadline);
                } catch (ConnectionLostException | SocketException $e) {
                    self::dropConnection($key);
                    throw $e;
                }
            }
        }

        /** @return resource */
        private function connection(string $key, bool $fresh)
        {
            if (isset(self::$connections[$key])) {
                $s = self::$connections[$key]['stream'];
                if (!$fresh && is_resource($s) && self::$connections[$key]['buf'] === '' && !self::readable($s)) {
                    return $s;
                }
                // Readable before we wrote anything: EOF (the daemon went away) or a
                // stray ack of an aborted earlier request. Start over either way.
                self::dropConnection($key);
            }
            $s = $this->open();
            if (self::readable($s)) {
                // A persistent stream left by an earlier request of this PHP-FPM
                // worker, with unread bytes or at EOF: replace it.
                self::closeStream($s);
                $s = $this->open();
            }
            self::$connections[$key] = ['stream' => $s, 'buf' => ''];
            return $s;
        }

        /** @return resource */
        private function open()
        {
            $path = (string) $this->socket;
            if ($this->encoding === 'msgpack') {
                // PHP keys persistent streams by address: give each encoding its
                // own connection (a connection's first byte fixes its encoding).
                $path = dirname($path) . '/./' . basename($path);
            }
            $errno = 0;
            $errstr = '';
            $s = @stream_socket_client('unix://' . $path, $errno, $errstr, $this->connectTimeoutS, \STREAM_CLIENT_CONNECT | \STREAM_CLIENT_PERSISTENT);
            if ($s === false) {
                throw new SocketException("cannot connect to {$this->socket}: " . ($errstr !== '' ? $errstr : "error {$errno}"));
            }
            stream_set_blocking($s, true);
            stream_set_write_buffer($s, 0);
            stream_set_read_buffer($s, 0);
            return $s;
        }

        /** @param resource $s */
        private static function readable($s): bool
        {
            $r = [$s];
            $w = $e = null;
            return @stream_select($r, $w, $e, 0, 0) > 0;
        }

        private static function dropConnection(string $key): void
        {
            if (isset(self::$connections[$key])) {
                self::closeStream(self::$connections[$key]['stream']);
                unset(self::$connections[$key]);
            }
        }

        /** @param resource|mixed $s */
        private static function closeStream($s): void
        {
            if (is_resource($s)) {
                @stream_socket_shutdown($s, \STREAM_SHUT_RDWR);
                @fclose($s); // also removes a persistent stream from PHP's list
            }
        }

        /** @param resource $s */
        private function writeAll($s, string $data, float $deadline): void
        {
            $len = strlen($data);
            $done = 0;
            while ($done < $len) {
                $left = $deadline - hrtime(true) / 1e9;
                if ($left <= 0) {
                    throw new SocketException('no ack within ' . (int) round($this->timeoutS * 1000) . ' ms (write blocked)');
                }
                stream_set_timeout($s, (int) $left, (int) (fmod($left, 1.0) * 1e6));
                $n = @fwrite($s, $done === 0 ? $data : substr($data, $done));
                if ($n === false || $n === 0) {
                    $meta = stream_get_meta_data($s);
                    if ($meta['timed_out']) {
                        throw new SocketException('no ack within ' . (int) round($this->timeoutS * 1000) . ' ms (write blocked)');
                    }
                    throw new ConnectionLostException('write to the ingest socket failed (' . (error_get_last()['message'] ?? 'closed') . ')');
                }
                $done += $n;
            }
        }

        /**
         * Read frames until the ack of `ids` arrives. Acks of other ids (left by
         * an earlier request that gave up) are skipped.
         * @param list<string> $ids
         * @return array<string, mixed>
         */
        private function readAck(string $key, array $ids, bool $batch, float $deadline): array
        {
            $c = &self::$connections[$key];
            while (true) {
                $frame = $this->nextFrame($c['buf']);
                if ($frame !== null) {
                    $ack = $this->decodeAck($frame);
                    if ($this->isOurs($ack, $ids, $batch)) {
                        if ($c['buf'] !== '') {
                            self::dropConnection($key); // unexpected extra bytes: start clean next time
                        }
                        return $ack;
                    }
                    $this->log('debug', 'skipped a stale ack', ['id' => $ack['id'] ?? null]);
                    continue;
                }
                $left = $deadline - hrtime(true) / 1e9;
                if ($left <= 0) {
                    throw new SocketException('no ack within ' . (int) round($this->timeoutS * 1000) . ' ms');
                }
                $r = [$c['stream']];
                $w = $e = null;
                $n = @stream_select($r, $w, $e, (int) $left, (int) (fmod($left, 1.0) * 1e6));
                if ($n === false) {
                    if (!is_resource($c['stream'])) {
                        throw new ConnectionLostException('ingest connection closed');
                    }
                    continue; // interrupted by a signal: the deadline still holds
                }
                if ($n === 0) {
                    continue;
                }
                $chunk = @fread($c['stream'], 65536);
                if ($chunk === false || $chunk === '') {
                    throw new ConnectionLostException('the daemon closed the ingest connection before its ack');
                }
                $c['buf'] .= $chunk;
            }
        }

        /** Take one complete frame off the front of `buf`, or null. */
        private function nextFrame(string &$buf): ?string
        {
            if ($this->encoding === 'ndjson') {
                $nl = strpos($buf, "\n");
                if ($nl === false) {
                    if (strlen($buf) > self::MAX_ACK_BYTES) {
                        throw new ConnectionLostException('ack line too long');
                    }
                    return null;
                }
                $line = rtrim(substr($buf, 0, $nl), "\r");
                $buf = (string) substr($buf, $nl + 1);
                return $line === '' ? $this->nextFrame($buf) : $line;
            }
            if (strlen($buf) < 4) {
                return null;
            }
            $n = unpack('N', $buf)[1];
            if ($n > self::MAX_ACK_BYTES) {
                throw new ConnectionLostException('ack frame too large');
            }
            if (strlen($buf) < 4 + $n) {
                return null;
            }
            $frame = substr($buf, 4, $n);
            $buf = (string) substr($buf, 4 + $n);
            return $frame;
        }

        /** @return array<string, mixed> */
        private function decodeAck(string $frame): array
        {
            $ack = $this->encoding === 'ndjson' ? json_decode($frame, true) : @msgpack_unpack($frame);
            if (!is_array($ack) || !array_key_exists('ok', $ack)) {
                throw new ConnectionLostException('unreadable ack from the daemon');
            }
            return $ack;
        }

        /**
         * @param array<string, mixed> $ack
         * @param list<string> $ids
         */
        private function isOurs(array $ack, array $ids, bool $batch): bool
        {
            if (isset($ack['results']) && is_array($ack['results'])) {
                $first = $ack['results'][0] ?? null;
                return $batch && count($ack['results']) === count($ids) && (!is_array($first) || !isset($first['id']) || $first['id'] === $ids[0]);
            }
            if (isset($ack['id'])) {
                return !$batch && $ack['id'] === $ids[0];
            }
            return true; // a whole-frame error ack carries no id
        }

        /** @param array<string, mixed> $ack */
        private function checkAck(array $ack, string $id): void
        {
            if (($ack['ok'] ?? false) === true) {
                if (($ack['journal'] ?? null) === 'dropped') {
                    $this->log('warning', 'event delivered, but the daemon could not keep it in the events table (journal queue full or shutting down)', ['id' => $id]);
                } elseif (isset($ack['journal'])) {
                    $this->log('debug', 'event delivered; the daemon journals it later (its database is down)', ['id' => $id]);
                }
                return;
            }
            $code = is_array($ack['error'] ?? null) ? (string) ($ack['error']['code'] ?? '') : '';
            $message = is_array($ack['error'] ?? null) ? (string) ($ack['error']['message'] ?? '') : '';
            if ($code !== 'TPWS_ERR_INVALID_EVENT') {
                // The daemon closes the connection after most other error acks.
                self::dropConnection($this->encoding . ':' . $this->socket);
            }
            if (in_array($code, self::INVALID_CODES, true)) {
                throw new InvalidEventException("tp-ws refused event {$id}: {$code}: {$message}", $code);
            }
            throw new SocketException("daemon answered {$code}" . ($message !== '' ? ": {$message}" : ''));
        }

        // ---- the table ------------------------------------------------------

        /**
         * INSERT the event as a pending row (processed = 0) with its id in
         * event_uuid. Returns true when the row already existed (duplicate key:
         * the daemon journaled it, so it is stored and delivered).
         * @param array<string, mixed> $event
         */
        private function insertRow(array $event): bool
        {
            for ($attempt = 0; ; $attempt++) {
                $pdo = $this->pdo();
                try {
                    return $this->withExceptions($pdo, function (\PDO $pdo) use ($event): bool {
                        $stmt = $this->insertStatement($pdo);
                        $stmt->bindValue(1, $event['event_type'], \PDO::PARAM_STR);
                        $stmt->bindValue(2, $event['target_type'], \PDO::PARAM_STR);
                        $stmt->bindValue(3, $event['target_id'], $event['target_id'] === null ? \PDO::PARAM_NULL : \PDO::PARAM_INT);
                        $stmt->bindValue(4, $event['_json'], \PDO::PARAM_STR);
                        if ($this->withUuidColumn) {
                            $stmt->bindValue(5, $event['id'], \PDO::PARAM_STR);
                        }
                        $stmt->execute();
                        return false;
                    });
                } catch (\PDOException $e) {
                    if (self::isDuplicateKey($e)) {
                        return true;
                    }
                    if ($this->withUuidColumn && self::isUnknownColumn($e) && $this->mode === 'default') {
                        // A TeamPass table `tp-ws migrate` has not touched yet: store the
                        // event without its id rather than lose it.
                        $this->log('warning', "the events table has no event_uuid column (run 'tp-ws migrate'); inserting without the event id", []);
                        $this->withUuidColumn = false;
                        $this->insertStmt = null;
                        continue;
                    }
                    if ($attempt === 0 && $this->ownPdo && !$pdo->inTransaction() && (self::isGoneAway($e) || self::isSqliteMisuse($e))) {
                        // A long-running worker's connection timed out, or its SQLite handle
                        // answers "bad parameter or other API misuse" (seen in a worker whose
                        // daemon was SIGKILLed and restarted on the same file, every later
                        // fallback failing the same way): reconnect once.
                        if (self::isSqliteMisuse($e)) {
                            $this->log('warning', 'table insert failed on a broken database handle; reconnecting once', ['id' => $event['id'], 'error' => $e->getMessage()]);
                        }
                        $this->pdo = null;
                        $this->insertStmt = null;
                        continue;
                    }
                    throw new TableException($e->getMessage(), (string) ($e->errorInfo[0] ?? $e->getCode()));
                }
            }
        }

        private function insertStatement(\PDO $pdo): \PDOStatement
        {
            if ($this->insertStmt === null || $this->insertStmtPdo !== $pdo) {
                $t = $this->quotedTable($pdo);
                $sql = $this->withUuidColumn
                    ? "INSERT INTO {$t} (event_type, target_type, target_id, payload, event_uuid) VALUES (?, ?, ?, ?, ?)"
                    : "INSERT INTO {$t} (event_type, target_type, target_id, payload) VALUES (?, ?, ?, ?)";
                $this->insertStmt = $pdo->prepare($sql);
                $this->insertStmtPdo = $pdo;
            }
            return $this->insertStmt;
        }

        /**
         * Which of `ids` have a row (committed, as seen outside a transaction).
         * @param list<string> $ids
         * @return array<string, true>
         */
        private function existingIds(array $ids): array
        {
            $pdo = $this->pdo();
            return $this->withExceptions($pdo, function (\PDO $pdo) use ($ids): array {
                $found = [];
                $t = $this->quotedTable($pdo);
                foreach (array_chunk($ids, 500) as $chunk) {
                    $stmt = $pdo->prepare("SELECT event_uuid FROM {$t} WHERE event_uuid IN (" . implode(',', array_fill(0, count($chunk), '?')) . ')');
                    $stmt->execute($chunk);
                    foreach ($stmt->fetchAll(\PDO::FETCH_COLUMN) as $uuid) {
                        $found[(string) $uuid] = true;
                    }
                }
                return $found;
            });
        }

        /** The PDO: the caller's, or one made from dsn/user/password on first need. */
        public function pdo(): \PDO
        {
            if ($this->pdo !== null) {
                return $this->pdo;
            }
            if ($this->dsn === null) {
                throw new TableException('no database configured (option pdo or dsn)');
            }
            $password = $this->password instanceof \Closure ? ($this->password)() : $this->password;
            $options = [
                \PDO::ATTR_ERRMODE => \PDO::ERRMODE_EXCEPTION,
                \PDO::ATTR_TIMEOUT => $this->dbTimeoutS,
            ] + $this->pdoOptions;
            try {
                $this->pdo = new \PDO($this->dsn, $this->user, $password === null ? null : (string) $password, $options);
            } catch (\PDOException $e) {
                // Not chained: a PDOException's trace holds the constructor's arguments.
                throw new TableException('cannot connect to the database (' . self::redactDsn($this->dsn) . '): ' . $e->getMessage(), (string) $e->getCode());
            }
            $this->ownPdo = true;
            return $this->pdo;
        }

        /**
         * Run `fn` with PDO errors as exceptions, whatever the caller's PDO is set to.
         * @template T
         * @param \Closure(\PDO): T $fn
         * @return T
         */
        private function withExceptions(\PDO $pdo, \Closure $fn): mixed
        {
            $mode = $pdo->getAttribute(\PDO::ATTR_ERRMODE);
            if ($mode === \PDO::ERRMODE_EXCEPTION) {
                return $fn($pdo);
            }
            $pdo->setAttribute(\PDO::ATTR_ERRMODE, \PDO::ERRMODE_EXCEPTION);
            try {
                return $fn($pdo);
            } finally {
                $pdo->setAttribute(\PDO::ATTR_ERRMODE, $mode);
            }
        }

        private function quotedTable(\PDO $pdo): string
        {
            $q = $pdo->getAttribute(\PDO::ATTR_DRIVER_NAME) === 'mysql' ? '`' : '"';
            return implode('.', array_map(static fn (string $p): string => $q . $p . $q, explode('.', $this->table)));
        }

        private static function isDuplicateKey(\PDOException $e): bool
        {
            $info = $e->errorInfo ?? [];
            $state = (string) ($info[0] ?? $e->getCode());
            if ($state === '23505') {
                return true; // PostgreSQL unique_violation
            }
            if ($state !== '23000') {
                return false;
            }
            $driverCode = (int) ($info[1] ?? 0);
            // MySQL/MariaDB ER_DUP_ENTRY (1062) / ER_DUP_ENTRY_WITH_KEY_NAME (1586); SQLite "UNIQUE constraint failed".
            return $driverCode === 1062 || $driverCode === 1586 || str_contains($e->getMessage(), 'UNIQUE constraint failed');
        }

        private static function isUnknownColumn(\PDOException $e): bool
        {
            $state = (string) ($e->errorInfo[0] ?? $e->getCode());
            return $state === '42S22' || ($state === 'HY000' && str_contains($e->getMessage(), 'no column named event_uuid'));
        }

        private static function isGoneAway(\PDOException $e): bool
        {
            $driverCode = (int) ($e->errorInfo[1] ?? 0);
            return $driverCode === 2006 || $driverCode === 2013 || str_contains($e->getMessage(), 'server has gone away');
        }

        private static function isSqliteMisuse(\PDOException $e): bool
        {
            return (int) ($e->errorInfo[1] ?? 0) === 21 && str_contains($e->getMessage(), 'misuse');
        }

        private static function redactDsn(string $dsn): string
        {
            return (string) preg_replace('/(password|pwd)=[^;]*/i', '$1=***', $dsn);
        }

        private static function positiveNumber(mixed $v, string $name): float
        {
            if ((!is_int($v) && !is_float($v)) || $v <= 0) {
                throw new \InvalidArgumentException("tp-ws: option {$name} must be a positive number");
            }
            return (float) $v;
        }

        /** @param array<string, mixed> $context */
        private function log(string $level, string $message, array $context): void
        {
            if ($this->logger !== null) {
                try {
                    ($this->logger)($level, 'tp-ws: ' . $message, $context);
                } catch (\Throwable) {
                    // A broken logger must not turn a delivered event into an error.
                }
            }
        }
    }

    /**
     * The TeamPass drop-in: configuration of the emitter that
     * emit_websocket_event() uses, once per process.
     *
     *   \TpWs\TeamPass::configure([
     *       'socket' => '/run/tp-ws/ingest.sock',
     *       'dsn' => 'mysql:host=…;dbname=…;charset=utf8mb4', 'user' => …, 'password' => …,
     *       'prefix' => 'teampass_',
     *   ]);
     *
     * or, inside TeamPass (settings.php constants DB_HOST, DB_PORT, DB_NAME,
     * DB_USER, DB_PREFIX, DB_ENCODING):
     *
     *   \TpWs\TeamPass::configureFromConstants(static fn () => defuseReturnDecrypted(DB_PASSWD));
     */
    final class TeamPass
    {
        private static ?Emitter $emitter = null;
        private static ?string $miscTable = null;
        /** @var (\Closure(): bool)|null */
        private static ?\Closure $enabled = null;
        /** Whether the "websocket_enabled is not '1'" line was logged in this process. */
        private static bool $disabledLogged = false;
        private static ?string $lastEventId = null;

        /**
         * @param array<string, mixed> $options the Emitter options (mode is always
         *   'default'), plus `prefix` (table prefix, default 'teampass_'; sets
         *   `table` to <prefix>websocket_events unless given) and `enabled` (a
         *   callable returning whether misc websocket_enabled is '1'; default: a
         *   query through the emitter's PDO on every call, as TeamPass does).
         */
        public static function configure(#[\SensitiveParameter] array $options): void
        {
            $prefix = $options['prefix'] ?? 'teampass_';
            if (!is_string($prefix) || preg_match('/^[A-Za-z0-9_$]*$/D', $prefix) !== 1) {
                throw new \InvalidArgumentException('tp-ws: option prefix must be a table prefix ([A-Za-z0-9_$]*)');
            }
            $enabled = $options['enabled'] ?? null;
            if ($enabled !== null && !is_callable($enabled)) {
                throw new \InvalidArgumentException('tp-ws: option enabled must be callable(): bool');
            }
            unset($options['prefix'], $options['enabled']);
            $options['table'] ??= $prefix . 'websocket_events';
            $options['mode'] = 'default';
            $options['logger'] ??= static function (string $level, string $message, array $context): void {
                if ($level !== 'debug' && $level !== 'info') {
                    error_log($message . ($context === [] ? '' : ' ' . json_encode($context, \JSON_UNESCAPED_SLASHES | \JSON_UNESCAPED_UNICODE | \JSON_PARTIAL_OUTPUT_ON_ERROR)));
                }
            };
            $emitter = new Emitter($options);
            self::$emitter = $emitter;
            self::$miscTable = $prefix . 'misc';
            self::$enabled = $enabled === null ? null : \Closure::fromCallable($enabled);
        }

        /**
         * Configure from TeamPass's settings.php constants. `password` is the
         * decrypted database password, or a Closure returning it (called only
         * when a database connection is needed).
         * @param array<string, mixed> $options as configure(); they win over the constants
         */
        public static function configureFromConstants(#[\SensitiveParameter] string|\Closure $password, array $options = []): void
        {
            foreach (['DB_HOST', 'DB_NAME', 'DB_USER'] as $c) {
                if (!defined($c)) {
                    throw new \LogicException("tp-ws: TeamPass constant {$c} is not defined (include TeamPass's settings.php first)");
                }
            }
            $host = (string) constant('DB_HOST');
            $dsn = 'mysql:' . (str_starts_with($host, '/') ? 'unix_socket=' . $host : 'host=' . $host)
                . (defined('DB_PORT') && (string) constant('DB_PORT') !== '' ? ';port=' . (int) constant('DB_PORT') : '')
                . ';dbname=' . (string) constant('DB_NAME')
                . ';charset=' . (defined('DB_ENCODING') && (string) constant('DB_ENCODING') !== '' ? (string) constant('DB_ENCODING') : 'utf8mb4');
            self::configure($options + [
                'dsn' => $dsn,
                'user' => (string) constant('DB_USER'),
                'password' => $password,
                'prefix' => defined('DB_PREFIX') ? (string) constant('DB_PREFIX') : 'teampass_',
            ]);
        }

        public static function isConfigured(): bool
        {
            return self::$emitter !== null;
        }

        public static function emitter(): Emitter
        {
            if (self::$emitter === null) {
                throw new \LogicException('tp-ws: call \TpWs\TeamPass::configure() (or configureFromConstants()) before emitting');
            }
            return self::$emitter;
        }

        /** Id of the last event emit() handed to the daemon or the table in this process, or null. */
        public static function lastEventId(): ?string
        {
            return self::$lastEventId;
        }

        public static function reset(): void
        {
            self::$emitter = null;
            self::$miscTable = null;
            self::$enabled = null;
            self::$lastEventId = null;
            self::$disabledLogged = false;
        }

        /**
         * emitWebSocketEvent() steps 2-6 (docs/emitter-php.md): websocket_enabled
         * gate, target validation, payload additions, then the emitter.
         * Never throws: false (and an error_log line) on any failure.
         * @param array<string|int, mixed> $payload
         */
        public static function emit(string $eventType, string $targetType, ?int $targetId, array $payload, ?int $excludeUserId = null): bool
        {
            try {
                $emitter = self::emitter();
                // 2. misc websocket_enabled must be '1' (a database error counts as "no").
                $disabled = self::disabledReason($emitter);
                if ($disabled !== null) {
                    // TeamPass says nothing here; an operator who installed tp-ws is told, once per process.
                    if (!self::$disabledLogged) {
                        self::$disabledLogged = true;
                        error_log("tp-ws: emitWebSocketEvent: events are not sent because misc websocket_enabled {$disabled}; "
                            . "turn WebSocket on in TeamPass's administration (misc websocket_enabled = '1'). Logged once per process.");
                    }
                    return false;
                }
                // 3. the target type.
                if (!in_array($targetType, Emitter::TARGET_TYPES, true)) {
                    error_log("tp-ws: emitWebSocketEvent: invalid target type '{$targetType}'");
                    return false;
                }
                // 4. and 5., in TeamPass's order.
                if ($excludeUserId !== null) {
                    $payload['exclude_user_id'] = $excludeUserId;
                }
                $payload['server_timestamp'] = time();
                // 6. publish: socket, else the table with the same id.
                if (($targetType === 'user' || $targetType === 'folder') && ($targetId === null || $targetId < 1)) {
                    self::$lastEventId = $emitter->storeUndeliverable($eventType, $targetType, $targetId, $payload);
                    return true;
                }
                self::$lastEventId = $emitter->emit($eventType, $targetType, $targetId, $payload, $excludeUserId);
                return true;
            } catch (\Throwable $e) {
                error_log("tp-ws: emitWebSocketEvent({$eventType}, {$targetType}) failed: " . $e->getMessage());
                return false;
            }
        }

        /** Null when misc websocket_enabled is '1'; otherwise what it is instead, for the log. */
        private static function disabledReason(Emitter $emitter): ?string
        {
            try {
                if (self::$enabled !== null) {
                    return (self::$enabled)() === true ? null : "is not '1' (the configured 'enabled' callable returned false)";
                }
                $pdo = $emitter->pdo();
                $q = $pdo->getAttribute(\PDO::ATTR_DRIVER_NAME) === 'mysql' ? '`' : '"';
                $stmt = $pdo->prepare('SELECT valeur FROM ' . $q . self::$miscTable . $q . ' WHERE intitule = ? LIMIT 1');
                if ($stmt === false || $stmt->execute(['websocket_enabled']) === false) {
                    return 'could not be read';
                }
                $value = $stmt->fetchColumn();
                $stmt->closeCursor();
            } catch (\Throwable $e) {
                // TeamPass: "any DB exception also returns false"
                return 'could not be read (' . $e->getMessage() . ')';
            }
            if ($value === '1' || $value === 1) {
                return null;
            }
            return $value === false ? 'is absent from ' . self::$miscTable : "is '" . substr((string) $value, 0, 20) . "', not '1'";
        }
    }

    /**
     * Exactly emitWebSocketEvent()'s signature and result (TeamPass 3.2,
     * steps 2-6, docs/emitter-php.md), through the emitter set by TeamPass::configure().
     * @param array<string|int, mixed> $payload
     */
    function emit_websocket_event(string $eventType, string $targetType, ?int $targetId, array $payload, ?int $excludeUserId = null): bool
    {
        return TeamPass::emit($eventType, $targetType, $targetId, $payload, $excludeUserId);
    }
}

namespace {

    if (!function_exists('tpws_emit_websocket_event')) {
        /**
         * Global alias of \TpWs\emit_websocket_event(), for TeamPass's
         * main.functions.php (see docs/teampass.md).
         * @param array<string|int, mixed> $payload
         */
        function tpws_emit_websocket_event(string $eventType, string $targetType, ?int $targetId, array $payload, ?int $excludeUserId = null): bool
        {
            return \TpWs\TeamPass::emit($eventType, $targetType, $targetId, $payload, $excludeUserId);
        }
    }
}
