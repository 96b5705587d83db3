import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT, importPKCS8 } from 'jose';
import { afterEach, describe, expect, it } from 'vitest';
import { startDaemon, type TestDaemon } from '../helpers/start-daemon.js';
import { TestClient } from '../helpers/ws-client.js';

describe('JWT authentication with public keys and custom claims', () => {
  let d: TestDaemon | undefined;
  afterEach(async () => { await d?.stop(); d = undefined; });

  it.each([
    ['RS256', 'rsa', { modulusLength: 2048 }],
    ['ES256', 'ec', { namedCurve: 'P-256' }],
  ] as const)('verifies %s tokens with auth.jwt.publicKeyFile and maps configured claim names', async (alg, type, params) => {
    const { privateKey, publicKey } = generateKeyPairSync(type as 'rsa', params as { modulusLength: number });
    const pemDir = mkdtempSync(join(tmpdir(), 'tpws-keys-'));
    const pubPath = join(pemDir, 'pub.pem');
    writeFileSync(pubPath, publicKey.export({ type: 'spki', format: 'pem' }));
    d = await startDaemon({
      'auth.methods': 'jwt',
      'auth.jwt.publicKeyFile': pubPath,
      'auth.jwt.claimUserId': 'id',
      'auth.jwt.claimLogin': 'username',
      'auth.jwt.claimFolders': 'allowed_folders',
      'auth.jwt.audience': 'tp-ws',
    });
    const key = await importPKCS8(privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, alg);
    const sign = (claims: Record<string, unknown>, aud = 'tp-ws') =>
      new SignJWT(claims).setProtectedHeader({ alg }).setAudience(aud).setExpirationTime('10m').sign(key);

    const { client, connected } = await TestClient.login(d.url(await sign({ id: 42, username: 'api', allowed_folders: '3,4' })));
    expect(connected).toMatchObject({ user_id: 42, user_login: 'api' });
    expect((await client.request({ action: 'subscribe', channel: 'folder', data: { folder_id: 4 } })).action).toBe('subscribed');
    expect((await client.request({ action: 'subscribe', channel: 'folder', data: { folder_id: 5 } })).error_code).toBe('forbidden');
    await client.close();

    // Wrong audience, missing user claim, and an HS256 token are refused.
    for (const token of [await sign({ id: 42 }, 'other'), await sign({ sub: '42' }), await new SignJWT({ id: 42 }).setProtectedHeader({ alg: 'HS256' }).setAudience('tp-ws').setExpirationTime('10m').sign(new TextEncoder().encode('x'.repeat(40)))]) {
      const c = new TestClient(d.url(token));
      expect((await c.next()).error_code).toBe('auth_failed');
      expect((await c.closed).code).toBe(1000);
    }
    rmSync(pemDir, { recursive: true, force: true });
  });
});

describe('secrets stay out of the logs', () => {
  let d: TestDaemon | undefined;
  afterEach(async () => { await d?.stop(); d = undefined; });

  it('never writes a token, valid or not, to a log line', async () => {
    d = await startDaemon();
    const { mintJwt } = await import('../../src/auth/jwt.js');
    const good = await mintJwt(d.daemon.jwtKey!, d.daemon.config.auth.jwt, { userId: 1, ttlSec: 60 });
    const bad = 'f'.repeat(64);
    const a = await TestClient.login(d.url(good));
    await a.client.close();
    const b = new TestClient(d.url(bad));
    await b.closed;
    const all = JSON.stringify(d.logs);
    expect(d.logs.some((l) => l.msg === 'authentication failed')).toBe(true);
    expect(all).not.toContain(good);
    expect(all).not.toContain(good.split('.')[2]);
    expect(all).not.toContain(bad);
  });
});
