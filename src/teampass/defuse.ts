/**
 * Decryption of Defuse php-encryption v2 ciphertexts (`def50200…` hex), the
 * format TeamPass stores `DB_PASSWD` in, with `node:crypto` only.
 *
 * Formats, as the library writes them (php-encryption `Core`, `Encoding`,
 * `Crypto::decryptInternal`, `KeyOrPassword::deriveKeys`):
 *
 * - Key, "ASCII-safe" string: hex of `DE F0 00 00` (4-byte header) + the
 *   32-byte key + SHA-256(header + key) (a checksum, 32 bytes).
 * - Ciphertext, hex: `DE F5 02 00` (4-byte header) + salt (32) + IV (16) +
 *   AES-256-CTR ciphertext + HMAC-SHA256 (32), at least 84 bytes.
 * - Keys per message: HKDF-SHA256(key, 32 bytes, salt, info
 *   `DefusePHP|V2|KeyForAuthentication`) authenticates, info
 *   `DefusePHP|V2|KeyForEncryption` encrypts. The HMAC covers header + salt +
 *   IV + ciphertext and is checked, in constant time, before anything is
 *   decrypted.
 *
 * Every failure is a `TPWS_ERR_TEAMPASS_CONFIG` error whose message says what
 * was wrong with the format, never a byte of the key or of the plaintext.
 * Derived keys are zeroed after use.
 */

import { createDecipheriv, createHash, createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';

import { TpWsError } from '../errors.js';

const KEY_HEADER = Buffer.from([0xde, 0xf0, 0x00, 0x00]);
const CIPHERTEXT_HEADER = Buffer.from([0xde, 0xf5, 0x02, 0x00]);
const HEADER_BYTES = 4;
const KEY_BYTES = 32;
const CHECKSUM_BYTES = 32;
const SALT_BYTES = 32;
const IV_BYTES = 16;
const MAC_BYTES = 32;
const MIN_CIPHERTEXT_BYTES = HEADER_BYTES + SALT_BYTES + IV_BYTES + MAC_BYTES; // 84, Core::MINIMUM_CIPHERTEXT_SIZE
const INFO_AUTH = 'DefusePHP|V2|KeyForAuthentication';
const INFO_ENC = 'DefusePHP|V2|KeyForEncryption';

/** What the Defuse library says for every ciphertext that does not authenticate. */
export const WRONG_KEY_OR_MODIFIED_CIPHERTEXT = 'wrong key or modified ciphertext';

/** Hex to bytes, or null when `text` is not an even number of hex digits. */
function hexBytes(text: string): Buffer | null {
  return text.length % 2 === 0 && /^[0-9A-Fa-f]*$/.test(text) ? Buffer.from(text, 'hex') : null;
}

/**
 * The 32-byte key from a Defuse "ASCII-safe" key string (the content of
 * TeamPass's `secrets/<SECUREFILE>`). Trailing whitespace, such as the
 * newline an editor adds, is ignored (the library's `trimTrailingWhitespace`).
 *
 * @param ascii - the key string, `def00000…` (136 hex digits)
 * @returns the raw key; the caller should `fill(0)` it when done
 * @throws TpWsError `TPWS_ERR_TEAMPASS_CONFIG` when it is not hex, has the wrong
 *   length or header, or its checksum does not match
 */
export function loadDefuseKey(ascii: string): Buffer {
  const bytes = hexBytes(ascii.replace(/[\s\0]+$/, ''));
  if (bytes === null) throw new TpWsError('TPWS_ERR_TEAMPASS_CONFIG', 'not a Defuse key: not a string of hex digits');
  try {
    if (bytes.length !== HEADER_BYTES + KEY_BYTES + CHECKSUM_BYTES) {
      throw new TpWsError('TPWS_ERR_TEAMPASS_CONFIG', `not a Defuse key: ${bytes.length} bytes, expected ${HEADER_BYTES + KEY_BYTES + CHECKSUM_BYTES}`);
    }
    if (!bytes.subarray(0, HEADER_BYTES).equals(KEY_HEADER)) {
      throw new TpWsError('TPWS_ERR_TEAMPASS_CONFIG', 'not a Defuse key: its header is not def00000 (a version 2 key)');
    }
    const checked = bytes.subarray(0, HEADER_BYTES + KEY_BYTES);
    const checksum = createHash('sha256').update(checked).digest();
    if (!timingSafeEqual(checksum, bytes.subarray(HEADER_BYTES + KEY_BYTES))) {
      throw new TpWsError('TPWS_ERR_TEAMPASS_CONFIG', 'Defuse key is corrupted: its checksum does not match');
    }
    return Buffer.from(bytes.subarray(HEADER_BYTES, HEADER_BYTES + KEY_BYTES));
  } finally {
    bytes.fill(0);
  }
}

/**
 * Decrypts a Defuse v2 ciphertext given as hex (`Crypto::decrypt($c, $key)`
 * with the default hex encoding).
 *
 * @param ciphertextHex - `def50200…`
 * @param key - the 32-byte raw key from `loadDefuseKey`; not modified
 * @returns the plaintext bytes
 * @throws TpWsError `TPWS_ERR_TEAMPASS_CONFIG` with a message starting
 *   `wrong key or modified ciphertext` for anything that does not
 *   authenticate (bad hex, too short, other version, HMAC mismatch), as the
 *   library's `WrongKeyOrModifiedCiphertextException`
 */
export function decryptDefuse(ciphertextHex: string, key: Buffer): Buffer {
  const fail = (why: string): TpWsError => new TpWsError('TPWS_ERR_TEAMPASS_CONFIG', `${WRONG_KEY_OR_MODIFIED_CIPHERTEXT} (${why})`);
  if (key.length !== KEY_BYTES) throw new TpWsError('TPWS_ERR_TEAMPASS_CONFIG', `a Defuse key is ${KEY_BYTES} bytes, got ${key.length}`);
  const data = hexBytes(ciphertextHex);
  if (data === null) throw fail('the ciphertext is not a string of hex digits');
  if (data.length < MIN_CIPHERTEXT_BYTES) throw fail(`the ciphertext is ${data.length} bytes, shorter than ${MIN_CIPHERTEXT_BYTES}`);
  const header = data.subarray(0, HEADER_BYTES);
  if (!header.equals(CIPHERTEXT_HEADER)) throw fail('its header is not def50200, the version 2 format');

  const salt = data.subarray(HEADER_BYTES, HEADER_BYTES + SALT_BYTES);
  const iv = data.subarray(HEADER_BYTES + SALT_BYTES, HEADER_BYTES + SALT_BYTES + IV_BYTES);
  const encrypted = data.subarray(HEADER_BYTES + SALT_BYTES + IV_BYTES, data.length - MAC_BYTES);
  const mac = data.subarray(data.length - MAC_BYTES);

  const authKey = Buffer.from(hkdfSync('sha256', key, salt, INFO_AUTH, KEY_BYTES));
  let expected: Buffer;
  try {
    expected = createHmac('sha256', authKey).update(data.subarray(0, data.length - MAC_BYTES)).digest();
  } finally {
    authKey.fill(0);
  }
  if (!timingSafeEqual(expected, mac)) throw fail('the HMAC does not match');

  const encKey = Buffer.from(hkdfSync('sha256', key, salt, INFO_ENC, KEY_BYTES));
  try {
    const decipher = createDecipheriv('aes-256-ctr', encKey, iv);
    return Buffer.concat([decipher.update(encrypted), decipher.final()]);
  } finally {
    encKey.fill(0);
  }
}
