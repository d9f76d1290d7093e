import { describe, expect, it } from 'vitest';
import { ResponseError } from 'vscode-jsonrpc/node';
import { AuthError } from '../../src/errors.js';
import { createLogger } from '../../src/log.js';
import { errorFromThrown, toResponseError } from '../../src/rpc/errors.js';

const silent = () => {
  const lines: string[] = [];
  return { log: createLogger('debug', (l) => lines.push(l)), lines };
};

describe('error mapping', () => {
  it('gives refusals -32600 with the reference message and a machine-readable reason', () => {
    const error = toResponseError({ kind: 'externalAuthActive' });
    expect(error.code).toBe(-32600);
    expect(error.message).toBe(
      'External auth is active. Use account/login/start (chatgptAuthTokens) to update it or account/logout to clear it.',
    );
    expect(error.data).toEqual({ reason: 'external_auth_active', recovery: 'logout_or_update_tokens' });
  });

  it('renders the forced-workspace refusal like Rust debug formatting', () => {
    const error = toResponseError({ kind: 'workspaceNotAllowed', allowed: ['ws-1', 'ws-3'], received: 'ws-2' });
    expect(error.message).toBe('External auth must use one of workspace(s) ["ws-1", "ws-3"], but received "ws-2".');
  });

  it('keeps an I/O message for internal failures that carry one', () => {
    const error = toResponseError({ kind: 'storageFailed', message: 'failed to save api key: EROFS' });
    expect(error.code).toBe(-32603);
    expect(error.message).toBe('failed to save api key: EROFS');
    expect(error.data?.reason).toBe('storage_failed');
  });

  it('maps a thrown AuthError by its kind', () => {
    const { log } = silent();
    const error = errorFromThrown(new AuthError('notInitialized'), log);
    expect([error.code, error.message]).toEqual([-32600, 'Not initialized']);
  });

  it('passes a ResponseError through unchanged', () => {
    const { log } = silent();
    const original = new ResponseError(-32600, 'x', { reason: 'r', recovery: 'none' });
    expect(errorFromThrown(original, log)).toBe(original);
  });

  it('answers anything unexpected with a generic internal error and logs it instead', () => {
    const { log, lines } = silent();
    const error = errorFromThrown(new TypeError('secret detail sk-abcdef'), log);
    expect([error.code, error.message]).toEqual([-32603, 'internal error']);
    expect(error.data).toEqual({ reason: 'internal', recovery: 'retry' });
    // Name and stack frames only: a message may quote input.
    expect(lines.join('')).toContain('unexpected failure: TypeError');
    expect(lines.join('')).not.toContain('secret detail');
    expect(lines.join('')).not.toContain('sk-abcdef');
  });
});
