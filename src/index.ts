/** Programmatic API of tp-ws. No side effects on import. */
export { Daemon, type DaemonOptions, type DaemonAddresses } from './daemon.js';
export { loadConfig, type ConfigSources } from './config/load.js';
export { SCHEMA, type Config } from './config/schema.js';
export { parseEvent, EventInvalid, type BridgeEvent, TARGET_TYPES, type TargetType } from './event.js';
export { TpWsError, ERROR_CODES, type TpWsErrorCode } from './errors.js';
export { CloseCode, reconnectPolicy } from './protocol/close-codes.js';
export { uuidv7 } from './uuid.js';
