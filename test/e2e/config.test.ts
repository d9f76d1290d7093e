import { chmodSync, existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { accountsCheck } from '../helpers/backend.js';
import { chatgptJwt } from '../helpers/jwt.js';
import { NO_AUTH_STATUS, LOGGED_OUT, tempHome, useServers, type ServerProcess } from '../helpers/server-process.js';


describe('configuration and environment (SPEC §4)', () => {
  const env = useServers();
  let server: ServerProcess;

  it('warns right after the initialize response when forced_login_method is invalid', async () => {
    server = env.spawn({ config: '# accounts\nforced_login_method = "password"\n' });
    const init = await server.initialize();
    const warning = await server.notification('configWarning');
    expect(server.messages.indexOf(warning)).toBe(server.messages.indexOf(init) + 1);
    const path = join(server.home, 'config.toml');
    expect(warning.params).toEqual({
      summary: 'Invalid configuration; using defaults.',
      details: `${path}:2:23: unknown variant \`password\`, expected \`chatgpt\` or \`api\``,
      path,
      range: { start: { line: 2, column: 23 }, end: { line: 2, column: 32 } },
    });
    await server.stderrMatching(/Invalid configuration; using defaults\./);
  });

  it('sends the configWarning only after the initialize response, not at start-up', async () => {
    server = env.spawn({ config: 'forced_login_method = "password"\n' });
    await server.stderrMatching(/Invalid configuration; using defaults\./);
    expect((await server.request('account/read', {})).error.message).toBe('Not initialized');
    expect(server.notifications()).toEqual([]);
    await server.initialize();
    await server.notification('configWarning');
    expect(server.notifications('configWarning')).toHaveLength(1);
  });

  it('reads as logged out under an invalid file', async () => {
    server = env.spawn({ config: 'forced_login_method = "password"\n' });
    await server.initialize();
    expect((await server.request('account/read', {})).result).toEqual(LOGGED_OUT);
    expect((await server.request('getAuthStatus', { includeToken: true })).result.authMethod).toBeNull();
  });

  it('falls back to defaults for every key when the file is invalid, and keeps serving', async () => {
    server = env.spawn({
      config:
        'forced_chatgpt_workspace_id = "ws-1"\ncli_auth_credentials_store = "ephemeral"\nforced_login_method = "password"\n',
      auth: { auth_mode: 'apikey', OPENAI_API_KEY: 'sk-kept' },
    });
    await server.initialize();
    // The file store (not ephemeral) is in use: the stored key is read and a new one written.
    expect((await server.request('account/read', {})).result.account).toEqual({ type: 'apiKey' });
    expect((await server.request('account/login/start', { type: 'apiKey', apiKey: 'sk-2' })).result).toEqual({ type: 'apiKey' });
    await server.notification('account/updated');
    expect(JSON.parse(readFileSync(join(server.home, 'auth.json'), 'utf8')).OPENAI_API_KEY).toBe('sk-2');
    // No forced workspace: an account id outside ["ws-1"] is accepted (the empty id fails discovery without HTTP).
    const from = server.messages.length;
    const login = await server.request('account/login/start', {
      type: 'chatgptAuthTokens',
      accessToken: chatgptJwt({ accountId: 'ws-2' }),
      chatgptAccountId: '',
    });
    expect(login.result).toEqual({ type: 'chatgptAuthTokens' });
    expect((await server.notification('account/login/completed', from)).params).toMatchObject({ success: false });
  });

  it('warns about a TOML syntax error with its position', async () => {
    server = env.spawn({ config: 'forced_login_method = \n' });
    await server.initialize();
    const warning = await server.notification('configWarning');
    expect(warning.params.summary).toBe('Invalid configuration; using defaults.');
    expect(warning.params.details).toMatch(new RegExp(`^${join(server.home, 'config.toml')}:1:\\d+: `));
    expect(warning.params.path).toBe(join(server.home, 'config.toml'));
    expect(warning.params.range.start).toEqual({ line: 1, column: 23 });
    await server.stderrMatching(/Invalid configuration; using defaults\./);
    expect((await server.request('account/read', {})).result).toEqual(LOGGED_OUT);
  });

  it('sends no configWarning for a valid file', async () => {
    server = env.spawn({ config: 'forced_login_method = "api"\nmodel = "gpt-5"\n[profiles.x]\nforced_login_method = 3\n' });
    await server.initialize();
    await server.request('account/read', {});
    expect(server.notifications('configWarning')).toEqual([]);
  });

  it('hides a stored API key under forced_login_method = "chatgpt" and leaves the file alone', async () => {
    const home = tempHome();
    const authPath = join(home, 'auth.json');
    const text = JSON.stringify({ auth_mode: 'apikey', OPENAI_API_KEY: 'sk-hidden' }, null, 2);
    writeFileSync(authPath, text);
    chmodSync(authPath, 0o644);
    server = env.spawn({ home, config: 'forced_login_method = "chatgpt"\n' });
    await server.initialize();
    expect((await server.request('account/read', {})).result).toEqual(LOGGED_OUT);
    expect((await server.request('getAuthStatus', { includeToken: true })).result).toEqual(NO_AUTH_STATUS);
    expect(readFileSync(authPath, 'utf8')).toBe(text);
    expect(statSync(authPath).mode & 0o777).toBe(0o644);
  });

  it('ignores OPENAI_API_KEY and CODEX_API_KEY in the environment: logged out, nothing written', async () => {
    server = env.spawn({ env: { OPENAI_API_KEY: 'sk-from-env', CODEX_API_KEY: 'sk-codex-env' } });
    await server.initialize();
    expect((await server.request('account/read', {})).result).toEqual(LOGGED_OUT);
    expect((await server.request('getAuthStatus', { includeToken: true })).result).toEqual(NO_AUTH_STATUS);
    expect((await server.request('account/rateLimits/read', {})).error.message).toBe(
      'codex account authentication required to read rate limits',
    );
    expect(existsSync(join(server.home, 'auth.json'))).toBe(false);
  });

  it('keeps credentials in memory only with cli_auth_credentials_store = "ephemeral"', async () => {
    const home = tempHome();
    server = env.spawn({ home, config: 'cli_auth_credentials_store = "ephemeral"\n' });
    await server.initialize();
    await server.request('account/login/start', { type: 'apiKey', apiKey: 'sk-mem' });
    expect((await server.request('account/read', {})).result.account).toEqual({ type: 'apiKey' });
    expect(existsSync(join(home, 'auth.json'))).toBe(false);
    await server.close();
    // Same home, so the same config.toml.
    server = env.spawn({ home });
    await server.initialize();
    expect((await server.request('account/read', {})).result).toEqual(LOGGED_OUT);
  });

  it('logs out of an ephemeral login without touching the disk', async () => {
    server = env.spawn({ config: 'cli_auth_credentials_store = "ephemeral"\n' });
    await server.initialize();
    await server.request('account/login/start', { type: 'apiKey', apiKey: 'sk-mem' });
    expect((await server.request('account/logout')).result).toEqual({});
    expect((await server.request('account/read', {})).result).toEqual(LOGGED_OUT);
    expect(readdirSync(server.home)).toEqual(['config.toml']);
  });

  it('warns about an unknown credentials store value', async () => {
    server = env.spawn({ config: 'cli_auth_credentials_store = "vault"\n' });
    await server.initialize();
    const warning = await server.notification('configWarning');
    expect(warning.params.details).toContain('unknown variant `vault`, expected one of `file`, `keyring`, `auto`, `ephemeral`');
    expect(warning.params.range).toEqual({ start: { line: 1, column: 30 }, end: { line: 1, column: 36 } });
  });

  it.each(['/backend-api', '/backend-api/'])('sends discovery to chatgpt_base_url given as <origin>%s', async (path) => {
    const backend = await env.backend();
    backend.on('/backend-api/wham/accounts/check', accountsCheck([{ id: 'ws-1', name: 'Acme' }]));
    server = env.spawn({ config: `chatgpt_base_url = "${backend.origin}${path}"\n` });
    await server.initialize();
    await server.request('account/login/start', {
      type: 'chatgptAuthTokens',
      accessToken: chatgptJwt({ accountId: 'ws-1' }),
      chatgptAccountId: 'ws-1',
    });
    await server.notification('account/updated');
    expect(backend.requests.map((r) => `${r.method} ${r.path}`)).toEqual(['GET /backend-api/wham/accounts/check']);
    expect((await server.request('account/read', {})).result.account.workspaceName).toBe('Acme');
  });

  it.each([
    ['a string', 'forced_chatgpt_workspace_id = "ws-1"\n', 'ws-2', '["ws-1"]'],
    ['a list', 'forced_chatgpt_workspace_id = ["ws-1", "ws-3"]\n', 'ws-2', '["ws-1", "ws-3"]'],
  ])('enforces forced_chatgpt_workspace_id given as %s', async (_kind, config, received, list) => {
    server = env.spawn({ config });
    await server.initialize();
    const response = await server.request('account/login/start', {
      type: 'chatgptAuthTokens',
      accessToken: chatgptJwt({ accountId: received }),
      chatgptAccountId: received,
    });
    expect(response.error).toEqual({
      code: -32600,
      message: `External auth must use one of workspace(s) ${list}, but received "${received}".`,
      data: { reason: 'workspace_not_allowed', recovery: 'relogin' },
    });
  });

  it('accepts host tokens for any workspace in the forced list', async () => {
    const backend = await env.backend();
    backend.on('/backend-api/wham/accounts/check', accountsCheck([{ id: 'ws-3', name: 'Third' }]));
    server = env.spawn({ config: `chatgpt_base_url = "${backend.baseUrl}"\nforced_chatgpt_workspace_id = ["ws-1", "ws-3"]\n` });
    await server.initialize();
    const response = await server.request('account/login/start', {
      type: 'chatgptAuthTokens',
      accessToken: chatgptJwt({ accountId: 'ws-3' }),
      chatgptAccountId: 'ws-3',
    });
    expect(response.result).toEqual({ type: 'chatgptAuthTokens' });
    expect((await server.notification('account/login/completed')).params.success).toBe(true);
  });

  it('hides stored ChatGPT credentials under forced_login_method = "api" and leaves the file alone', async () => {
    const auth = {
      auth_mode: 'chatgpt',
      OPENAI_API_KEY: 'sk-exchanged',
      tokens: { id_token: chatgptJwt({ accountId: 'ws-1' }), access_token: chatgptJwt({ accountId: 'ws-1' }), refresh_token: 'rt', account_id: 'ws-1' },
      last_refresh: null,
    };
    server = env.spawn({ config: 'forced_login_method = "api"\n', auth });
    await server.initialize();
    expect((await server.request('account/read', {})).result).toEqual(LOGGED_OUT);
    expect((await server.request('getAuthStatus', { includeToken: true })).result.authMethod).toBeNull();
    expect(readFileSync(join(server.home, 'auth.json'), 'utf8')).toBe(JSON.stringify(auth, null, 2));
  });

  it('does not restrict API key logins by forced workspace', async () => {
    server = env.spawn({ config: 'forced_chatgpt_workspace_id = "ws-1"\n' });
    await server.initialize();
    expect((await server.request('account/login/start', { type: 'apiKey', apiKey: 'sk' })).result).toEqual({ type: 'apiKey' });
  });
});
