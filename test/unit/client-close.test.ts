import { describe, expect, it } from 'vitest';
import { decideAfterClose } from '../../src/client/close-decision.js';
import { CloseCode } from '../../src/protocol/close-codes.js';

const base = { intentional: false, authFailed: false };

describe('decideAfterClose', () => {
  it('follows reconnectPolicy by range', () => {
    expect(decideAfterClose({ ...base, code: CloseCode.SESSION_EXPIRED })).toBe('terminal');
    expect(decideAfterClose({ ...base, code: 4000 })).toBe('terminal');
    expect(decideAfterClose({ ...base, code: 4099 })).toBe('terminal');
    expect(decideAfterClose({ ...base, code: CloseCode.SLOW_CONSUMER })).toBe('backoff');
    expect(decideAfterClose({ ...base, code: 4199 })).toBe('backoff');
    expect(decideAfterClose({ ...base, code: CloseCode.SHUTDOWN })).toBe('now');
    expect(decideAfterClose({ ...base, code: 4299 })).toBe('now');
    for (const code of [1000, 1001, 1006, 1009, 1011, 3000, 4300]) expect(decideAfterClose({ ...base, code })).toBe('backoff');
  });

  it('4103 (token expired) goes through the token refresh', () => {
    expect(decideAfterClose({ ...base, code: CloseCode.TOKEN_EXPIRED })).toBe('refresh');
  });

  it('an auth_failed error before connected wins over its close 1000', () => {
    expect(decideAfterClose({ ...base, code: 1000, authFailed: true })).toBe('refresh');
  });

  it('disconnect() wins over everything', () => {
    expect(decideAfterClose({ code: 4001, intentional: true, authFailed: true })).toBe('stop');
    expect(decideAfterClose({ code: 1006, intentional: true, authFailed: false })).toBe('stop');
  });
});
