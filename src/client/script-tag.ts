/**
 * The script-tag build: defines `window.TeamPassWebSocket`, the name
 * TeamPass's unchanged init script looks for, and `window.TpWs`, the whole
 * module (its class, `CloseCode`, `reconnectPolicy`).
 */
import * as TpWs from './tp-ws-client.js';

const page = globalThis as unknown as { TeamPassWebSocket: unknown; TpWs: unknown };
page.TeamPassWebSocket = TpWs.TeamPassWebSocket;
page.TpWs = TpWs;
