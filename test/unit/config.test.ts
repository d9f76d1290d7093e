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

  it('uses defaults for an empty config.toml and ignores keys it does not know', () => {
    for (const text of ['', 'model = "gpt-5"\napproval_policy = "never"\n']) {
      const config = loadConfig({ CODEX_HOME: homeWith(text) });
      expect(config.policy).toEqual({ forcedLoginMethod: null, forcedWorkspaceIds: null });
      expect(config.warning).toBeNull();
    }
  });

  it.each(['chatgpt', 'api'] as const)('reads forced_login_method = "%s"', (method) => {
    const config = loadConfig({ CODEX_HOME: homeWith(`forced_login_method = "${method}"\n`) });
    expect(config.policy.forcedLoginMethod).toBe(method);
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

  it('keeps a chatgpt_base_url that already ends with a slash unchanged', () => {
    const config = loadConfig({ CODEX_HOME: homeWith('chatgpt_base_url = "http://127.0.0.1:9/api/"\n') });
    expect(config.chatgptBaseUrl).toBe('http://127.0.0.1:9/api/');
  });

  it.each(['file', 'keyring', 'auto', 'ephemeral'] as const)('reads cli_auth_credentials_store = "%s"', (store) => {
    const config = loadConfig({ CODEX_HOME: homeWith(`cli_auth_credentials_store = "${store}"\n`) });
    expect(config.credentialsStore).toBe(store);
  });

  it('does not take values under a [table] as top-level keys', () => {
    const config = loadConfig({
      CODEX_HOME: homeWith(
        '[profiles.work]\nforced_login_method = "chatgpt"\nforced_chatgpt_workspace_id = "ws-1"\nchatgpt_base_url = "http://x/"\n',
      ),
    });
    expect(config.policy).toEqual({ forcedLoginMethod: null, forcedWorkspaceIds: null });
    expect(config.chatgptBaseUrl).toBe(DEFAULT_CHATGPT_BASE_URL);
    expect(config.warning).toBeNull();
  });

  it('does not take a dotted key as the top-level key it ends with', () => {
    const config = loadConfig({ CODEX_HOME: homeWith('profiles.forced_login_method = "password"\n') });
    expect(config.policy.forcedLoginMethod).toBeNull();
    expect(config.warning).toBeNull();
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

  it('reads the keyring deadline from the environment, 30 s by default', () => {
    expect(loadConfig({ CODEX_HOME: homeWith() }).keyringTimeoutMs).toBe(30_000);
    expect(loadConfig({ CODEX_HOME: homeWith(), CODEX_ACCOUNT_SERVER_KEYRING_TIMEOUT_MS: '250' }).keyringTimeoutMs).toBe(250);
  });

  it('reads the host refresh deadline from the environment, 10 s by default and outside 1..600000 ms', () => {
    const deadline = (value?: string) =>
      loadConfig({ CODEX_HOME: homeWith(), CODEX_ACCOUNT_SERVER_HOST_REFRESH_TIMEOUT_MS: value }).hostRefreshTimeoutMs;
    expect(deadline()).toBe(10_000);
    expect(deadline('1')).toBe(1);
    expect(deadline('600000')).toBe(600_000);
    for (const invalid of ['0', '600001', '1.5', 'soon', '', '-5']) expect(deadline(invalid)).toBe(10_000);
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

  it('invalidates the whole file for an unknown forced_login_method, pointing at the quoted value', () => {
    const home = homeWith('chatgpt_base_url = "http://127.0.0.1:9/"\nforced_login_method = "password"\n');
    const path = join(home, 'config.toml');
    const config = loadConfig({ CODEX_HOME: home });
    expect(config.chatgptBaseUrl).toBe(DEFAULT_CHATGPT_BASE_URL);
    expect(config.warning).toEqual({
      summary: 'Invalid configuration; using defaults.',
      details: `${path}:2:23: unknown variant \`password\`, expected \`chatgpt\` or \`api\``,
      path,
      range: { start: { line: 2, column: 23 }, end: { line: 2, column: 32 } },
    });
  });

  it('treats forced_login_method as case-sensitive', () => {
    const { warning } = readConfigToml('/h/config.toml', () => 'forced_login_method = "API"\n');
    expect(warning?.details).toBe('/h/config.toml:1:23: unknown variant `API`, expected `chatgpt` or `api`');
  });

  it('invalidates the file for a workspace list holding a non-string', () => {
    const { values, warning } = readConfigToml('/h/config.toml', () => 'forced_chatgpt_workspace_id = ["ws-1", 2]\n');
    expect(values).toEqual({});
    expect(warning?.range).toEqual({ start: { line: 1, column: 31 }, end: { line: 1, column: 41 } });
  });

  it('warns about a TOML syntax error at its line and column', () => {
    const { values, warning } = readConfigToml('/h/config.toml', () => 'model = "x"\nforced_login_method = \n');
    expect(values).toEqual({});
    expect(warning?.summary).toBe('Invalid configuration; using defaults.');
    expect(warning?.details).toMatch(/^\/h\/config\.toml:2:23: \S/);
    expect(warning?.range).toEqual({ start: { line: 2, column: 23 }, end: { line: 2, column: 23 } });
  });

  it('treats a missing config.toml as empty, even when CODEX_HOME is not a directory', () => {
    const home = tempHome();
    writeFileSync(join(home, 'file'), '');
    expect(readConfigToml(join(home, 'absent.toml'))).toEqual({ values: {}, warning: null });
    expect(readConfigToml(join(home, 'file', 'config.toml'))).toEqual({ values: {}, warning: null });
  });

  it('turns a read error such as EACCES into a warning at 1:1', () => {
    const denied = () => {
      throw Object.assign(new Error("EACCES: permission denied, open '/h/config.toml'"), { code: 'EACCES' });
    };
    expect(readConfigToml('/h/config.toml', denied)).toEqual({
      values: {},
      warning: {
        summary: 'Invalid configuration; using defaults.',
        details: "/h/config.toml:1:1: EACCES: permission denied, open '/h/config.toml'",
        path: '/h/config.toml',
        range: { start: { line: 1, column: 1 }, end: { line: 1, column: 1 } },
      },
    });
  });

  it('turns an unreadable config.toml into a warning', () => {
    const home = tempHome();
    mkdirSync(join(home, 'config.toml'));
    const { values, warning } = readConfigToml(join(home, 'config.toml'));
    expect(values).toEqual({});
    expect(warning?.summary).toBe('Invalid configuration; using defaults.');
  });

  it('locates a value by a quoted key, inside CRLF lines, and with # inside the string', () => {
    expect(locateValue('"forced_login_method" = "x"\n', 'forced_login_method')).toEqual({
      start: { line: 1, column: 25 },
      end: { line: 1, column: 27 },
    });
    expect(locateValue('a = 1\r\nforced_login_method = "xy"\r\n', 'forced_login_method')).toEqual({
      start: { line: 2, column: 23 },
      end: { line: 2, column: 26 },
    });
    expect(locateValue('forced_login_method = "a#b" # c\n', 'forced_login_method')).toEqual({
      start: { line: 1, column: 23 },
      end: { line: 1, column: 27 },
    });
  });

  it('does not locate an absent key or a key that merely starts the same way', () => {
    expect(locateValue('model = "x"\n', 'forced_login_method')).toBeNull();
    expect(locateValue('forced_login_method_x = "x"\n', 'forced_login_method')).toBeNull();
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

describe('config wording', () => {
  it('blames the element, not the list, for a non-string workspace id', () => {
    const home = tempHome();
    writeFileSync(join(home, 'config.toml'), 'forced_chatgpt_workspace_id = ["ws-1", 2]\n');
    expect(loadConfig({ CODEX_HOME: home }).warning?.details).toMatch(/: invalid type: integer `2`, expected a string$/);
  });
});
