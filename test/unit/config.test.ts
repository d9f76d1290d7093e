import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEFAULT_CHATGPT_BASE_URL, loadConfig, locateValue, readConfigToml } from '../../src/config.js';
import { tempHome } from '../helpers/server-process.js';

function homeWith(config?: string): string {
  const home = tempHome();
  if (config !== undefined) writeFileSync(join(home, 'config.toml'), config);
  return home;
}

describe('config', () => {
  it('uses defaults without a config.toml and without a warning', () => {
    const config = loadConfig({ CODEX_HOME: homeWith() });
    expect(config.policy).toEqual({ forcedLoginMethod: null, forcedWorkspaceIds: null });
    expect(config.chatgptBaseUrl).toBe(DEFAULT_CHATGPT_BASE_URL);
    expect(config.credentialsStore).toBe('file');
    expect(config.warning).toBeNull();
  });

  it('normalises a single forced workspace id to a list', () => {
    const config = loadConfig({ CODEX_HOME: homeWith('forced_chatgpt_workspace_id = "ws-1"\n') });
    expect(config.policy.forcedWorkspaceIds).toEqual(['ws-1']);
  });

  it('keeps a list of forced workspace ids', () => {
    const config = loadConfig({ CODEX_HOME: homeWith("forced_chatgpt_workspace_id = ['ws-1', 'ws-3']\n") });
    expect(config.policy.forcedWorkspaceIds).toEqual(['ws-1', 'ws-3']);
  });

  it('adds a trailing slash to chatgpt_base_url', () => {
    const config = loadConfig({ CODEX_HOME: homeWith('chatgpt_base_url = "http://127.0.0.1:9/api"\n') });
    expect(config.chatgptBaseUrl).toBe('http://127.0.0.1:9/api/');
  });

  it('reads the OAuth overrides and own settings from the environment', () => {
    const config = loadConfig({
      CODEX_HOME: homeWith(),
      CODEX_APP_SERVER_LOGIN_ISSUER: 'http://127.0.0.1:1/',
      CODEX_REFRESH_TOKEN_URL_OVERRIDE: 'http://127.0.0.1:1/t',
      CODEX_ACCOUNT_SERVER_HTTP_TIMEOUT_MS: '250',
      CODEX_ACCOUNT_SERVER_LOG: 'debug',
    });
    expect([config.issuer, config.refreshTokenUrl, config.httpTimeoutMs, config.logLevel]).toEqual([
      'http://127.0.0.1:1',
      'http://127.0.0.1:1/t',
      250,
      'debug',
    ]);
  });

  it('resolves a relative CODEX_HOME to an absolute path', () => {
    const config = loadConfig({ CODEX_HOME: 'relative-home-that-does-not-exist' });
    expect(config.codexHome).toBe(join(process.cwd(), 'relative-home-that-does-not-exist'));
  });

  it('invalidates the whole file for a wrong type, with the serde message', () => {
    const home = homeWith('forced_login_method = "api"\nforced_chatgpt_workspace_id = 5\n');
    const config = loadConfig({ CODEX_HOME: home });
    expect(config.policy.forcedLoginMethod).toBeNull();
    expect(config.warning?.details).toBe(
      `${join(home, 'config.toml')}:2:31: invalid type: integer \`5\`, expected a string or a sequence of strings`,
    );
  });

  it('turns an unreadable config.toml into a warning', () => {
    const home = tempHome();
    mkdirSync(join(home, 'config.toml'));
    const { values, warning } = readConfigToml(join(home, 'config.toml'));
    expect(values).toEqual({});
    expect(warning?.summary).toBe('Invalid configuration; using defaults.');
  });

  it('locates only top-level keys, not keys under a table', () => {
    expect(locateValue('[profiles.a]\nforced_login_method = "x"\n', 'forced_login_method')).toBeNull();
    expect(locateValue("forced_login_method = 'x' # note\n", 'forced_login_method')).toEqual({
      start: { line: 1, column: 23 },
      end: { line: 1, column: 25 },
    });
    expect(locateValue('forced_login_method=42\n', 'forced_login_method')).toEqual({
      start: { line: 1, column: 21 },
      end: { line: 1, column: 22 },
    });
  });
});
