import { build } from 'esbuild';
import { describe, expect, it } from 'vitest';
import { loadConfig, parseLoginPorts } from '../../src/config.js';

describe('login configuration', () => {
  it('uses the reference ports 1455 then 1457 by default', () => {
    expect(parseLoginPorts(undefined)).toEqual([1455, 1457]);
  });

  it('reads CODEX_ACCOUNT_SERVER_LOGIN_PORTS as a comma-separated list (0 = any free port)', () => {
    expect(parseLoginPorts('2455, 2457')).toEqual([2455, 2457]);
    expect(parseLoginPorts('0')).toEqual([0]);
  });

  it.each(['', 'abc', '1455,x', '70000', '-1', '1.5'])('falls back to the reference ports for %j', (value) => {
    expect(parseLoginPorts(value)).toEqual([1455, 1457]);
  });

  it('reads the ports, the login timeout and the OAuth endpoints from the environment', () => {
    const config = loadConfig({
      CODEX_HOME: '/nonexistent-cas-home',
      CODEX_ACCOUNT_SERVER_LOGIN_PORTS: '3455,3457',
      CODEX_ACCOUNT_SERVER_LOGIN_TIMEOUT_MS: '1234',
      CODEX_APP_SERVER_LOGIN_ISSUER: 'http://127.0.0.1:9/',
      CODEX_REFRESH_TOKEN_URL_OVERRIDE: 'http://127.0.0.1:9/oauth/token',
    });
    expect([config.loginPorts, config.loginTimeoutMs, config.issuer, config.refreshTokenUrl]).toEqual([
      [3455, 3457],
      1234,
      'http://127.0.0.1:9',
      'http://127.0.0.1:9/oauth/token',
    ]);
  });

  it('gives a login 10 minutes by default, as the reference', () => {
    expect(loadConfig({ CODEX_HOME: '/nonexistent-cas-home' }).loginTimeoutMs).toBe(600_000);
  });
});

describe('lazy loading', () => {
  it('keeps the callback server, the issuer calls and jose out of what importing the login actors loads', async () => {
    const result = await build({
      entryPoints: ['src/effects/login/actors.ts'],
      bundle: true,
      splitting: true,
      format: 'esm',
      platform: 'node',
      outdir: 'out',
      write: false,
      metafile: true,
      logLevel: 'silent',
    });
    const entry = Object.values(result.metafile.outputs).find((o) => o.entryPoint === 'src/effects/login/actors.ts')!;
    const eager = Object.keys(entry.inputs);
    expect(eager.some((i) => i.includes('node_modules/xstate'))).toBe(true);
    for (const lazy of ['callback-server.ts', 'token-endpoint.ts', 'device-code.ts', 'refresh.ts', 'node_modules/jose']) {
      expect(eager.filter((i) => i.includes(lazy))).toEqual([]);
    }
    expect(entry.imports.some((i) => i.kind === 'dynamic-import')).toBe(true);
  });
});
