/**
 * Defuse php-encryption v2 decryption against vectors made by the real PHP
 * library (test/fixtures/teampass/defuse-vectors.json),
 * and the ways a key or a ciphertext can be wrong: every one refused with
 * TPWS_ERR_TEAMPASS_CONFIG and a message that holds neither key nor plaintext.
 */
import { createCipheriv, createHash, createHmac, hkdfSync, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { describe, expect, it } from 'vitest';

import { WRONG_KEY_OR_MODIFIED_CIPHERTEXT, decryptDefuse, loadDefuseKey } from '../../src/teampass/defuse.js';
import { TpWsError } from '../../src/errors.js';

interface Vector {
  key_ascii_safe: string;
  plaintext: string | null;
  ciphertext: string;
  expect?: string;
}

const FIXTURE = fileURLToPath(new URL('../fixtures/teampass/', import.meta.url));
const VECTORS = JSON.parse(readFileSync(join(FIXTURE, 'defuse-vectors.json'), 'utf8')) as Vector[];
const GOOD = VECTORS.filter((v) => v.expect === undefined);
const BAD = VECTORS.filter((v) => v.expect !== undefined);

function errorOf(fn: () => unknown): TpWsError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(TpWsError);
    expect((err as TpWsError).code).toBe('TPWS_ERR_TEAMPASS_CONFIG');
    return err as TpWsError;
  }
  throw new Error('expected an error, got none');
}

/** A ciphertext the way the library builds one, so the tests can alter any part. */
function encrypt(plain: Buffer, key: Buffer): Buffer {
  const header = Buffer.from([0xde, 0xf5, 0x02, 0x00]);
  const salt = randomBytes(32);
  const iv = randomBytes(16);
  const ekey = Buffer.from(hkdfSync('sha256', key, salt, 'DefusePHP|V2|KeyForEncryption', 32));
  const akey = Buffer.from(hkdfSync('sha256', key, salt, 'DefusePHP|V2|KeyForAuthentication', 32));
  const c = createCipheriv('aes-256-ctr', ekey, iv);
  const body = Buffer.concat([header, salt, iv, c.update(plain), c.final()]);
  return Buffer.concat([body, createHmac('sha256', akey).update(body).digest()]);
}

/** An ASCII-safe key string for raw key bytes, with a correct checksum unless told otherwise. */
function asciiKey(key: Buffer, header = Buffer.from([0xde, 0xf0, 0, 0])): string {
  const checked = Buffer.concat([header, key]);
  return Buffer.concat([checked, createHash('sha256').update(checked).digest()]).toString('hex');
}

describe('decryptDefuse', () => {
  it('has the vectors the brief promises: eight that decrypt, two that must not', () => {
    expect(GOOD).toHaveLength(8);
    expect(BAD.map((v) => v.expect)).toEqual(['wrong_key_or_modified_ciphertext', 'wrong_key_or_modified_ciphertext']);
    expect(VECTORS.slice(-2)).toEqual(BAD);
  });

  it.each(GOOD.map((v, i) => [i, v] as const))('decrypts vector %i, made by the PHP library, to its plaintext', (_, v) => {
    const key = loadDefuseKey(v.key_ascii_safe);
    expect(decryptDefuse(v.ciphertext, key).toString('utf8')).toBe(v.plaintext);
  });

  it.each(BAD.map((v, i) => [GOOD.length + i, v] as const))('refuses vector %i (wrong key or modified ciphertext), saying so', (_, v) => {
    const key = loadDefuseKey(v.key_ascii_safe);
    const err = errorOf(() => decryptDefuse(v.ciphertext, key));
    expect(err.message).toMatch(new RegExp(`^${WRONG_KEY_OR_MODIFIED_CIPHERTEXT} \\(the HMAC does not match\\)$`));
  });

  it('decrypts with the other key of the set only what that key encrypted', () => {
    const keys = [...new Set(GOOD.map((v) => v.key_ascii_safe))].map(loadDefuseKey);
    expect(keys).toHaveLength(2);
    const fromFirst = GOOD.find((v) => loadDefuseKey(v.key_ascii_safe).equals(keys[0])) as Vector;
    errorOf(() => decryptDefuse(fromFirst.ciphertext, keys[1]));
  });

  it('accepts upper-case hex, as the library does', () => {
    const v = GOOD[0];
    expect(decryptDefuse(v.ciphertext.toUpperCase(), loadDefuseKey(v.key_ascii_safe.toUpperCase())).toString()).toBe(v.plaintext);
  });

  it('refuses any single flipped bit, in header, salt, IV, ciphertext or HMAC', () => {
    const key = randomBytes(32);
    const good = encrypt(Buffer.from('s3cr3t'), key);
    expect(decryptDefuse(good.toString('hex'), key).toString()).toBe('s3cr3t');
    for (const at of [0, 3, 4, 35, 36, 51, 52, 57, good.length - 32, good.length - 1]) {
      const bad = Buffer.from(good);
      bad[at] ^= 0x01;
      const err = errorOf(() => decryptDefuse(bad.toString('hex'), key));
      expect(err.message.startsWith(WRONG_KEY_OR_MODIFIED_CIPHERTEXT), `byte ${at}`).toBe(true);
    }
  });

  it('refuses other versions, truncated input, odd or non-hex digits, naming the problem', () => {
    const key = randomBytes(32);
    const good = encrypt(Buffer.from('x'), key).toString('hex');
    expect(errorOf(() => decryptDefuse(`def50100${good.slice(8)}`, key)).message).toContain('header is not def50200');
    expect(errorOf(() => decryptDefuse(good.slice(0, 166), key)).message).toContain('83 bytes, shorter than 84');
    expect(errorOf(() => decryptDefuse(good.slice(0, -1), key)).message).toContain('not a string of hex digits');
    expect(errorOf(() => decryptDefuse(`${good.slice(0, -2)}zz`, key)).message).toContain('not a string of hex digits');
    expect(errorOf(() => decryptDefuse('', key)).message).toContain('0 bytes');
  });

  it('decrypts an empty plaintext (84 bytes, the shortest ciphertext)', () => {
    const key = randomBytes(32);
    const c = encrypt(Buffer.alloc(0), key);
    expect(c).toHaveLength(84);
    expect(decryptDefuse(c.toString('hex'), key)).toEqual(Buffer.alloc(0));
  });

  it('refuses a key that is not 32 bytes', () => {
    expect(errorOf(() => decryptDefuse(GOOD[0].ciphertext, randomBytes(16))).message).toBe('a Defuse key is 32 bytes, got 16');
  });

  it('leaves the key it was given intact', () => {
    const key = loadDefuseKey(GOOD[0].key_ascii_safe);
    const copy = Buffer.from(key);
    decryptDefuse(GOOD[0].ciphertext, key);
    expect(key).toEqual(copy);
  });

  it('never puts the plaintext or the key into an error message', () => {
    const key = randomBytes(32);
    const secret = 'plain-secret-value';
    const c = encrypt(Buffer.from(secret), key);
    c[60] ^= 1;
    const err = errorOf(() => decryptDefuse(c.toString('hex'), key));
    expect(err.message).not.toContain(secret);
    expect(err.message).not.toContain(key.toString('hex'));
    expect(String(err.stack)).not.toContain(key.toString('hex'));
  });
});

describe('loadDefuseKey', () => {
  const raw = randomBytes(32);

  it('reads the 32-byte key of an ASCII-safe key string, ignoring a trailing newline', () => {
    expect(loadDefuseKey(asciiKey(raw))).toEqual(raw);
    expect(loadDefuseKey(`${asciiKey(raw)}\n`)).toEqual(raw);
    expect(loadDefuseKey(`${asciiKey(raw)}\r\n \t`)).toEqual(raw);
  });

  it('reads the key file of the sample TeamPass install', () => {
    const text = readFileSync(join(FIXTURE, 'secrets/teampass-key-7f3a9c.txt'), 'utf8');
    expect(loadDefuseKey(text)).toEqual(loadDefuseKey(VECTORS[0].key_ascii_safe));
  });

  it('refuses a corrupted checksum', () => {
    const text = asciiKey(raw);
    const flipped = `${text.slice(0, 20)}${text[20] === '0' ? '1' : '0'}${text.slice(21)}`;
    expect(errorOf(() => loadDefuseKey(flipped)).message).toBe('Defuse key is corrupted: its checksum does not match');
  });

  it('refuses another header: a ciphertext or a legacy key is no key', () => {
    expect(errorOf(() => loadDefuseKey(asciiKey(raw, Buffer.from([0xde, 0xf5, 2, 0])))).message).toBe('not a Defuse key: its header is not def00000 (a version 2 key)');
  });

  it('refuses wrong lengths and non-hex text, without quoting it', () => {
    expect(errorOf(() => loadDefuseKey(asciiKey(raw).slice(0, 134))).message).toBe('not a Defuse key: 67 bytes, expected 68');
    const notHex = `secret-words-${'x'.repeat(10)}`;
    const err = errorOf(() => loadDefuseKey(notHex));
    expect(err.message).toBe('not a Defuse key: not a string of hex digits');
    expect(errorOf(() => loadDefuseKey('')).message).toBe('not a Defuse key: 0 bytes, expected 68');
  });

  it('never puts the key into an error message', () => {
    const text = asciiKey(raw);
    const bad = `${text.slice(0, -2)}${text.endsWith('00') ? '11' : '00'}`;
    const err = errorOf(() => loadDefuseKey(bad));
    expect(err.message).not.toContain(raw.toString('hex'));
    expect(err.message).not.toContain(bad);
  });
});
