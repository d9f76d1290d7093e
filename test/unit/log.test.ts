import { describe, expect, it } from 'vitest';
import { Secret } from '../../machines/secret.js';
import { createLogger, parseLogLevel, redact } from '../../src/log.js';
import { chatgptJwt } from '../helpers/jwt.js';

function capture(level: Parameters<typeof createLogger>[0]) {
  const lines: string[] = [];
  return { log: createLogger(level, (line) => lines.push(line)), lines };
}

describe('log', () => {
  it('masks JWTs, sk- keys and bearer headers in free text', () => {
    const jwt = chatgptJwt({ email: 'a@b.c', accountId: 'ws-1' });
    const out = redact(`token ${jwt} key sk-live-123456 header Authorization: Bearer abc.def`);
    expect(out).not.toContain(jwt);
    expect(out).not.toContain('sk-live-123456');
    expect(out).not.toContain('abc.def');
    expect(out).toContain('[redacted]');
  });

  it('masks secret-named JSON fields whatever their value looks like', () => {
    const out = redact(JSON.stringify({ apiKey: 'plain-value', refresh_token: 'rt-1', loginId: 'keep-me' }));
    expect(out).not.toContain('plain-value');
    expect(out).not.toContain('rt-1');
    expect(out).toContain('keep-me');
  });

  it('prints a Secret as [redacted], also inside objects', () => {
    const { log, lines } = capture('debug');
    log.info('value', new Secret('sk-hidden'), { nested: new Secret('also-hidden') });
    expect(lines.join('')).not.toMatch(/hidden/);
    expect(lines.join('')).toContain('[redacted]');
  });

  it('drops lines below the configured level', () => {
    const { log, lines } = capture('warn');
    log.info('quiet');
    log.debug('quieter');
    log.warn('loud');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain('WARN codex-account-server: loud');
  });

  it('reads log levels case-insensitively and falls back to warn', () => {
    expect(parseLogLevel('DEBUG')).toBe('debug');
    expect(parseLogLevel('verbose')).toBe('warn');
    expect(parseLogLevel(undefined)).toBe('warn');
  });

  it('serialises a Secret as [redacted] through JSON and String', () => {
    const secret = new Secret('sk-abc');
    expect(JSON.stringify({ secret })).toBe('{"secret":"[redacted]"}');
    expect(String(secret)).toBe('[redacted]');
    expect(secret.reveal()).toBe('sk-abc');
  });
});
