import { describe, expect, it } from 'vitest';
import { parseInspectRequest } from '../../src/inspect/options.js';

describe('parseInspectRequest', () => {
  it('is off without flags or environment', () => {
    expect(parseInspectRequest([], {})).toBeNull();
    expect(parseInspectRequest([], { CODEX_ACCOUNT_SERVER_INSPECT: '0' })).toBeNull();
  });

  it('reads --inspect, --inspect-ui and --inspect-ui=PORT', () => {
    expect(parseInspectRequest(['--inspect'], {})).toEqual({ stately: 'bridge', ui: false, port: 0 });
    expect(parseInspectRequest(['--inspect-ui'], {})).toEqual({ stately: null, ui: true, port: 0 });
    expect(parseInspectRequest(['--inspect', '--inspect-ui=8123'], {})).toEqual({ stately: 'bridge', ui: true, port: 8123 });
  });

  it('reads CODEX_ACCOUNT_SERVER_INSPECT as on, or as a relay URL', () => {
    expect(parseInspectRequest([], { CODEX_ACCOUNT_SERVER_INSPECT: '1' })).toEqual({ stately: 'bridge', ui: false, port: 0 });
    expect(parseInspectRequest([], { CODEX_ACCOUNT_SERVER_INSPECT: 'ws://127.0.0.1:8080' })).toEqual({
      stately: { relay: 'ws://127.0.0.1:8080' },
      ui: false,
      port: 0,
    });
  });

  it('rejects a port out of range and a relay that is not a WebSocket URL', () => {
    expect(() => parseInspectRequest(['--inspect-ui=70000'], {})).toThrow('--inspect-ui: expected a port number (0-65535), got "70000"');
    expect(() => parseInspectRequest(['--inspect-ui=abc'], {})).toThrow('--inspect-ui: expected a port number');
    expect(() => parseInspectRequest(['--inspect=http://x'], {})).toThrow('--inspect: expected ws://host:port');
  });
});
