/**
 * checkListenAgreement: whether TeamPass's misc websocket_host/websocket_port
 * (what its PHP probe, health check and browser URL use) reach the address
 * tp-ws listens on, with a plain function standing in for the misc table.
 */
import { describe, expect, it } from 'vitest';

import { checkListenAgreement } from '../../src/teampass/listen-agreement.js';

/** A getMisc over fixed rows; records the keys asked for. */
function misc(rows: Record<string, string>) {
  const asked: string[] = [];
  const get = async (key: string): Promise<string | null> => {
    asked.push(key);
    return Object.hasOwn(rows, key) ? rows[key] : null;
  };
  return Object.assign(get, { asked });
}

const check = (host: string, port: string, listenHost: string, listenPort = 8080) =>
  checkListenAgreement(misc({ websocket_host: host, websocket_port: port }), { host: listenHost, port: listenPort });

describe('checkListenAgreement', () => {
  it('reads websocket_host and websocket_port only', async () => {
    const get = misc({ websocket_host: '127.0.0.1', websocket_port: '8080' });
    expect(await checkListenAgreement(get, { host: '127.0.0.1', port: 8080 })).toBeNull();
    expect(get.asked.sort()).toEqual(['websocket_host', 'websocket_port']);
  });

  it('has nothing to say when a misc row is missing or empty (no TeamPass, or WebSocket never set up)', async () => {
    expect(await checkListenAgreement(misc({}), { host: '127.0.0.1', port: 1 })).toBeNull();
    expect(await checkListenAgreement(misc({ websocket_host: '127.0.0.1' }), { host: '127.0.0.1', port: 1 })).toBeNull();
    expect(await checkListenAgreement(misc({ websocket_port: '8080' }), { host: '10.0.0.1', port: 1 })).toBeNull();
    expect(await check('', '8080', '10.0.0.1', 1)).toBeNull();
    expect(await check('127.0.0.1', ' ', '10.0.0.1', 1)).toBeNull();
  });

  it('passes on a failure of getMisc', async () => {
    await expect(checkListenAgreement(async () => { throw new Error('db down'); }, { host: '127.0.0.1', port: 8080 })).rejects.toThrow('db down');
  });

  describe('agrees', () => {
    it.each([
      ['the same address', '127.0.0.1', '127.0.0.1'],
      ['localhost and a loopback listener', 'localhost', '127.0.0.1'],
      ['localhost and an IPv6 loopback listener', 'localhost', '::1'],
      ['127.0.0.1 and a listener on localhost', '127.0.0.1', 'localhost'],
      ['::1 and a listener on localhost', '::1', 'localhost'],
      ['127.0.0.1 and the IPv4 wildcard', '127.0.0.1', '0.0.0.0'],
      ['127.0.0.1 and the dual-stack wildcard', '127.0.0.1', '::'],
      ['::1 and the dual-stack wildcard', '::1', '::'],
      ['a host name and the IPv4 wildcard', 'teampass.example.com', '0.0.0.0'],
      ['a public address and the wildcard', '203.0.113.7', '0.0.0.0'],
      ['a public address and a listener on it', '203.0.113.7', '203.0.113.7'],
      ['an IPv6 address and the dual-stack wildcard', '2001:db8::1', '::'],
      ['a bracketed IPv6 address and a listener on it', '[2001:DB8::1]', '2001:db8::1'],
      ['a host name in another case', 'TeamPass.Example.com', 'teampass.example.com'],
      ['an IPv4-mapped address and the IPv4 listener', '::ffff:127.0.0.1', '127.0.0.1'],
      ['values with blanks around them', ' 127.0.0.1 ', '127.0.0.1'],
    ])('for %s', async (_, host, listenHost) => {
      expect(await check(host, '8080', listenHost)).toBeNull();
      expect(await check(host, ' 8080 ', listenHost)).toBeNull();
    });
  });

  describe('warns', () => {
    it('when the ports differ, saying which and how to align them', async () => {
      expect(await check('127.0.0.1', '8080', '127.0.0.1', 9000)).toEqual({
        message: 'TeamPass\'s websocket_port is "8080" but tp-ws listens on port 9000: TeamPass\'s dashboard probe and health check connect there, so they report the daemon stopped',
        misc_host: '127.0.0.1',
        misc_port: '8080',
        host: '127.0.0.1',
        port: 9000,
        fix: 'Start tp-ws with --port 8080, or set TeamPass\'s websocket_port to 9000',
      });
    });

    it('when the misc port is not a number', async () => {
      const w = await check('127.0.0.1', 'eighty', '127.0.0.1', 8080);
      expect(w?.message).toContain('websocket_port is "eighty"');
      expect(w?.fix).toBe('Set TeamPass\'s websocket_port to 8080');
    });

    it('when TeamPass names a public host but tp-ws listens on loopback only (browsers and the probe cannot reach it)', async () => {
      expect(await check('teampass.example.com', '8080', '127.0.0.1')).toEqual({
        message: 'TeamPass\'s websocket_host is "teampass.example.com" but tp-ws listens on 127.0.0.1: browsers connect there directly, and TeamPass\'s dashboard probe and health check too, so they cannot reach tp-ws',
        misc_host: 'teampass.example.com',
        misc_port: '8080',
        host: '127.0.0.1',
        port: 8080,
        fix: 'Start tp-ws with --host 0.0.0.0 (or the address teampass.example.com resolves to), or set TeamPass\'s websocket_host to 127.0.0.1 (browsers then connect through the web server\'s proxy at /ws)',
      });
    });

    it('when a public address is not the one tp-ws listens on', async () => {
      const w = await check('203.0.113.7', '8080', '198.51.100.2');
      expect(w?.fix).toBe('Start tp-ws with --host 0.0.0.0, or set TeamPass\'s websocket_host to 127.0.0.1 (browsers then connect through the web server\'s proxy at /ws)');
    });

    it('when a host name is compared with a specific address, which it is not resolved to', async () => {
      expect(await check('teampass.example.com', '8080', '203.0.113.7')).not.toBeNull();
    });

    it('when an IPv6 misc host meets the IPv4-only wildcard', async () => {
      const w = await check('2001:db8::1', '8080', '0.0.0.0');
      expect(w?.fix).toMatch(/^Start tp-ws with --host ::,/);
      expect(await check('::1', '8080', '0.0.0.0')).not.toBeNull();
    });

    it('between loopback addresses of different families or numbers, which do not reach each other', async () => {
      expect((await check('127.0.0.1', '8080', '::1'))?.fix).toBe('Start tp-ws with --host 127.0.0.1, or set TeamPass\'s websocket_host to ::1');
      expect((await check('::1', '8080', '127.0.0.1'))?.fix).toBe('Start tp-ws with --host ::1, or set TeamPass\'s websocket_host to 127.0.0.1');
      expect(await check('127.0.0.1', '8080', '127.0.0.2')).not.toBeNull();
    });

    it('when TeamPass probes loopback but tp-ws listens on a public address only, without moving browsers off the proxy', async () => {
      const w = await check('localhost', '8080', '203.0.113.7');
      expect(w?.message).toContain('they report the daemon stopped');
      expect(w?.fix).toBe('Start tp-ws with --host 127.0.0.1');
    });

    it('about host and port at once', async () => {
      const w = await check('teampass.example.com', '8080', '127.0.0.1', 9000);
      expect(w?.message).toBe('TeamPass\'s websocket_port is "8080" but tp-ws listens on port 9000; TeamPass\'s websocket_host is "teampass.example.com" but tp-ws listens on 127.0.0.1: browsers connect there directly, and TeamPass\'s dashboard probe and health check too, so they cannot reach tp-ws');
      expect(w?.fix).toBe('Start tp-ws with --port 8080 --host 0.0.0.0 (or the address teampass.example.com resolves to), or set TeamPass\'s websocket_port to 9000 and websocket_host to 127.0.0.1 (browsers then connect through the web server\'s proxy at /ws)');
    });
  });
});
