import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { IngestClient } from '../../src/ingest/client.js';

const BIN = join(import.meta.dirname, '../../bin/tp-ws.js');

describe('SIGKILL under load', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tpws-crash-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('every event acked before the kill is in the events table afterwards', async () => {
    const socket = join(dir, 'ingest.sock');
    const child = spawn(process.execPath, [BIN, 'serve', '--port', '0', '--admin-port', '-1', '--state-dir', dir, '--socket', socket, '--log-level', 'warn'], { stdio: ['ignore', 'ignore', 'pipe'] });
    await new Promise<void>((resolve, reject) => {
      createInterface({ input: child.stderr! }).on('line', (l) => { if (l.includes('listening on')) resolve(); });
      child.once('exit', (code) => reject(new Error(`daemon exited ${code}`)));
    });
    const exited = new Promise((r) => child.once('exit', r));

    const sender = await IngestClient.connect(socket, { timeoutMs: 3000 });
    const acked: string[] = [];
    let sent = 0;
    // Pipeline events in bursts and kill the daemon while acks are still coming.
    const reader = (async () => {
      for (;;) {
        let ack;
        try {
          ack = await sender.nextAck();
        } catch {
          return; // the daemon is gone
        }
        if (ack.ok === true && ack.journal === undefined) acked.push(ack.id as string);
        if (acked.length === 300) child.kill('SIGKILL');
      }
    })();
    while (child.exitCode === null && child.signalCode === null && sent < 20_000) {
      for (let i = 0; i < 50; i++, sent++) sender.send({ id: `crash-${sent}`, event_type: 'load', target_type: 'broadcast', payload: { n: sent } });
      await new Promise((r) => setImmediate(r));
    }
    await exited;
    await reader;
    sender.destroy();

    expect(acked.length).toBeGreaterThanOrEqual(300);
    expect(sent).toBeGreaterThan(acked.length); // the kill did land mid-stream
    const db = new Database(join(dir, 'tp-ws.db'), { readonly: true });
    const stored = new Set((db.prepare("SELECT event_uuid FROM teampass_websocket_events WHERE event_uuid LIKE 'crash-%'").all() as { event_uuid: string }[]).map((r) => r.event_uuid));
    db.close();
    const missing = acked.filter((id) => !stored.has(id));
    expect(missing).toEqual([]);
  });
});
