import { chmodSync, existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { accountsCheck } from '../helpers/backend.js';
import { chatgptAuthFile, chatgptJwt } from '../helpers/jwt.js';
import { NO_AUTH_STATUS, LOGGED_OUT, settle, tempHome, useServers, type StartOptions } from '../helpers/server-process.js';



describe('auth.json (SPEC §5)', () => {
  const env = useServers();
  const start = (options: StartOptions = {}) => env.start(options);

  it('writes the API key file byte for byte as Codex does', async () => {
    const s = await start();
    await s.request('account/login/start', { type: 'apiKey', apiKey: 'sk-new' });
    const bytes = readFileSync(join(s.home, 'auth.json'), 'utf8');
    expect(bytes).toBe(JSON.stringify({ auth_mode: 'apikey', OPENAI_API_KEY: 'sk-new' }, null, 2));
    expect(Buffer.byteLength(bytes)).toBe(57);
  });

  it('creates auth.json with mode 0600', async () => {
    const s = await start();
    await s.request('account/login/start', { type: 'apiKey', apiKey: 'sk-new' });
    expect(statSync(join(s.home, 'auth.json')).mode & 0o777).toBe(0o600);
  });

  it('turns a 0644 file into 0600 on every write', async () => {
    const home = tempHome();
    writeFileSync(join(home, 'auth.json'), JSON.stringify({ auth_mode: 'apikey', OPENAI_API_KEY: 'sk-old' }, null, 2));
    const s = await start({ home });
    for (const key of ['sk-1', 'sk-2', 'sk-3']) {
      chmodSync(join(home, 'auth.json'), 0o644);
      await s.request('account/login/start', { type: 'apiKey', apiKey: key });
      expect(statSync(join(home, 'auth.json')).mode & 0o777).toBe(0o600);
    }
  });

  it('creates the lock files on the first write, not on reads, and keeps them after logout', async () => {
    const s = await start();
    await s.request('account/read', {});
    expect(readdirSync(s.home).sort()).toEqual([]);
    await s.request('account/login/start', { type: 'apiKey', apiKey: 'sk' });
    expect(statSync(join(s.home, 'auth.json.lock')).mode & 0o777).toBe(0o600);
    expect(statSync(join(s.home, 'auth.json.lock')).size).toBe(0);
    expect(statSync(join(s.home, 'auth.lock')).mode & 0o777).toBe(0o644);
    expect(statSync(join(s.home, 'auth.lock')).size).toBe(0);
    await s.request('account/logout');
    expect(readdirSync(s.home).sort()).toEqual(['auth.json.lock', 'auth.lock']);
  });

  it('creates no lock files when it only reads an existing auth.json', async () => {
    const s = await start({ auth: { OPENAI_API_KEY: 'sk-legacy', tokens: null, last_refresh: null } });
    await s.request('account/read', {});
    await s.request('getAuthStatus', { includeToken: true });
    expect(readdirSync(s.home)).toEqual(['auth.json']);
  });

  it('deletes auth.json at logout and reads logged out afterwards', async () => {
    const s = await start();
    await s.request('account/login/start', { type: 'apiKey', apiKey: 'sk' });
    await s.notification('account/updated');
    const from = s.messages.length;
    expect((await s.request('account/logout')).result).toEqual({});
    expect(existsSync(join(s.home, 'auth.json'))).toBe(false);
    expect((await s.notification('account/updated', from)).params).toEqual({ authMode: null, planType: null });
    expect((await s.request('account/read', {})).result).toEqual(LOGGED_OUT);
  });

  it('leaves no temporary files behind after writes', async () => {
    const s = await start();
    for (const key of ['sk-1', 'sk-2', 'sk-3']) await s.request('account/login/start', { type: 'apiKey', apiKey: key });
    expect(readdirSync(s.home).sort()).toEqual(['auth.json', 'auth.json.lock', 'auth.lock']);
  });

  it('keeps an API key login across a restart', async () => {
    const home = tempHome();
    let s = await start({ home });
    await s.request('account/login/start', { type: 'apiKey', apiKey: 'sk-persist' });
    await s.close();
    s = await start({ home });
    expect((await s.request('getAuthStatus', { includeToken: true })).result.authToken).toBe('sk-persist');
  });

  it('sends no notification on the first read of a stored API key', async () => {
    const s = await start({ auth: { auth_mode: 'apikey', OPENAI_API_KEY: 'sk-stored' } });
    const from = s.messages.length;
    const read = await s.request('account/read', {});
    expect(read.result).toEqual({ ...LOGGED_OUT, account: { type: 'apiKey' } });
    await settle(s);
    expect(s.messages.slice(from)).toEqual([read]);
  });

  it('reads a legacy file without auth_mode as an API key', async () => {
    const s = await start({ auth: { OPENAI_API_KEY: 'sk-legacy', tokens: null, last_refresh: null } });
    expect((await s.request('account/read', {})).result.account).toEqual({ type: 'apiKey' });
  });

  it('reads a file with neither key nor tokens as logged out', async () => {
    const s = await start({ auth: { OPENAI_API_KEY: null, tokens: null, last_refresh: null } });
    expect((await s.request('account/read', {})).result).toEqual(LOGGED_OUT);
  });

  it('creates a CODEX_HOME that does not exist yet on the first write, not on reads', async () => {
    const home = join(tempHome(), 'nested', 'home');
    const s = await start({ home });
    expect((await s.request('account/read', {})).result).toEqual(LOGGED_OUT);
    expect(existsSync(home)).toBe(false);
    await s.request('account/login/start', { type: 'apiKey', apiKey: 'sk' });
    expect(readFileSync(join(home, 'auth.json'), 'utf8')).toBe(JSON.stringify({ auth_mode: 'apikey', OPENAI_API_KEY: 'sk' }, null, 2));
  });

  describe('stored ChatGPT credentials', () => {
    it('runs discovery on the first read and notifies before replying, then serves reads from the cache', async () => {
      const backend = await env.backend();
      backend.on('/backend-api/wham/accounts/check', accountsCheck([{ id: 'ws-1', name: 'Acme' }]));
      const auth = chatgptAuthFile();
      const s = await start({ auth, config: `chatgpt_base_url = "${backend.baseUrl}"\n` });
      const from = s.messages.length;
      s.send({ id: 'r1', method: 'account/read', params: {} });
      await s.response('r1');
      expect(s.messages.slice(from)).toEqual([
        { method: 'account/updated', params: { authMode: 'chatgpt', planType: 'pro' }, emittedAtMs: expect.any(Number) },
        {
          id: 'r1',
          result: {
            account: { type: 'chatgpt', email: 'a@b.c', planType: 'pro', workspaceName: 'Acme' },
            userId: 'user-1',
            requiresOpenaiAuth: true,
            workspaceRouting: { chatgptAccountId: 'ws-1', backendOrigin: 'https://chatgpt.com', accountRoutingOverride: 'NO_CONSTRAINT' },
          },
        },
      ]);
      await s.request('account/read', {});
      expect(s.notifications('account/updated')).toHaveLength(1);
      expect(backend.requestsTo('/backend-api/wham/accounts/check')).toHaveLength(1);
      expect(backend.requests[0]?.headers['chatgpt-account-id']).toBe('ws-1');
      expect(backend.requests[0]?.headers.authorization).toBe(`Bearer ${auth.tokens.access_token}`);
    });

    // Unconfirmed in SPEC §3.1; this server answers the discovery error and retries on the next read.
    it('answers the first read with the discovery error when discovery fails, and retries on the next read', async () => {
      const backend = await env.backend();
      backend.on('/backend-api/wham/accounts/check', { status: 500 });
      const s = await start({ auth: chatgptAuthFile(), config: `chatgpt_base_url = "${backend.baseUrl}"\n` });
      const failed = await s.request('account/read', {});
      expect(failed.error).toMatchObject({ code: -32603, message: 'workspace routing discovery failed' });
      expect(s.notifications('account/updated')).toEqual([]);
      backend.on('/backend-api/wham/accounts/check', accountsCheck([{ id: 'ws-1', name: 'Acme' }]));
      expect((await s.request('account/read', {})).result.account.workspaceName).toBe('Acme');
      expect(backend.requestsTo('/backend-api/wham/accounts/check')).toHaveLength(2);
    });

    it('rewrites the file in the API key layout when an API key login replaces them', async () => {
      const s = await start({ auth: chatgptAuthFile() });
      await s.request('account/login/start', { type: 'apiKey', apiKey: 'sk-switch' });
      expect(readFileSync(join(s.home, 'auth.json'), 'utf8')).toBe(
        JSON.stringify({ auth_mode: 'apikey', OPENAI_API_KEY: 'sk-switch' }, null, 2),
      );
      expect((await s.request('account/read', {})).result.account).toEqual({ type: 'apiKey' });
    });

    it('reports the stored access token through getAuthStatus', async () => {
      const auth = chatgptAuthFile();
      const s = await start({ auth });
      expect((await s.request('getAuthStatus', { includeToken: true })).result).toEqual({
        authMethod: 'chatgpt',
        authToken: auth.tokens.access_token,
        requiresOpenaiAuth: true,
      });
    });

    it('hides stored credentials of a workspace outside forced_chatgpt_workspace_id', async () => {
      const s = await start({ auth: chatgptAuthFile({ accountId: 'ws-2' }), config: 'forced_chatgpt_workspace_id = "ws-1"\n' });
      expect((await s.request('account/read', {})).result).toEqual(LOGGED_OUT);
    });

    it('revokes the refresh token at logout and deletes the file', async () => {
      const backend = await env.backend();
      backend.on('/oauth/revoke', { status: 200, json: {} });
      const s = await start({
        auth: chatgptAuthFile(),
        env: { CODEX_REVOKE_TOKEN_URL_OVERRIDE: `${backend.origin}/oauth/revoke` },
      });
      expect((await s.request('account/logout')).result).toEqual({});
      const [revoke] = backend.requestsTo('/oauth/revoke');
      expect(JSON.parse(revoke!.body)).toEqual({
        token: 'rt-1',
        token_type_hint: 'refresh_token',
        client_id: 'app_EMoamEEZ73f0CkXaXp7hrann',
      });
      expect(revoke!.headers.originator).toBe('test-host');
      expect(existsSync(join(s.home, 'auth.json'))).toBe(false);
    });

    it('logs out locally when revocation fails', async () => {
      const backend = await env.backend();
      backend.on('/oauth/revoke', { hangUp: true });
      const s = await start({
        auth: chatgptAuthFile(),
        env: { CODEX_REVOKE_TOKEN_URL_OVERRIDE: `${backend.origin}/oauth/revoke` },
      });
      expect((await s.request('account/logout')).result).toEqual({});
      expect(existsSync(join(s.home, 'auth.json'))).toBe(false);
      await s.stderrMatching(/revocation failed/);
      expect(s.stderr).not.toContain('rt-1');
    });
  });

  describe('a corrupt or unusable file', () => {
    it.each([
      ['invalid JSON', '{"auth_mode": "apikey", '],
      ['a wrong layout', '{"OPENAI_API_KEY": 42}'],
      ['an apikey mode without key', '{"auth_mode": "apikey"}'],
      ['an unknown mode', '{"auth_mode": "bedrock", "OPENAI_API_KEY": "sk"}'],
      ['ChatGPT tokens whose id_token is not a JWT', '{"auth_mode": "chatgpt", "tokens": {"id_token": "x", "access_token": "a", "refresh_token": "r"}}'],
    ])('answers reads of %s with auth_file_corrupt and leaves the bytes alone', async (_name, text) => {
      const s = await start({ auth: text });
      const response = await s.request('account/read', {});
      expect(response.error).toMatchObject({ code: -32603, data: { reason: 'auth_file_corrupt', recovery: 'relogin' } });
      expect(response.error.message).toContain(join(s.home, 'auth.json'));
      expect((await s.request('account/read', {})).error.data.reason).toBe('auth_file_corrupt');
      expect(readFileSync(join(s.home, 'auth.json'), 'utf8')).toBe(text);
    });

    it('moves the corrupt file aside when a login replaces it', async () => {
      const s = await start({ auth: '{not json' });
      await s.request('account/login/start', { type: 'apiKey', apiKey: 'sk-fresh' });
      const backups = readdirSync(s.home).filter((f) => f.startsWith('auth.json.corrupt-'));
      expect(backups).toHaveLength(1);
      expect(readFileSync(join(s.home, backups[0]!), 'utf8')).toBe('{not json');
      expect((await s.request('account/read', {})).result.account).toEqual({ type: 'apiKey' });
      await s.stderrMatching(/moved unreadable/);
    });

    // What getAuthStatus says about a corrupt file is unspecified; this server reports no credentials.
    it('keeps serving getAuthStatus as logged out', async () => {
      const s = await start({ auth: '{not json' });
      expect((await s.request('getAuthStatus', { includeToken: true })).result).toEqual(NO_AUTH_STATUS);
      expect(readFileSync(join(s.home, 'auth.json'), 'utf8')).toBe('{not json');
    });

    it('deletes the corrupt file at logout: no copy of a credential stays on disk', async () => {
      const s = await start({ auth: '{not json' });
      expect((await s.request('account/logout')).result).toEqual({});
      // Only Codex's empty lock file may stay: logout takes the locks as Codex's does (SPEC §8.1).
      expect(readdirSync(s.home).filter((f) => f.startsWith('auth.json'))).toEqual(['auth.json.lock']);
      expect((await s.request('account/read', {})).result).toEqual(LOGGED_OUT);
    });

    it('answers storage_failed when auth.json cannot be read', async () => {
      const home = tempHome();
      const { mkdirSync } = await import('node:fs');
      mkdirSync(join(home, 'auth.json'));
      const s = await start({ home });
      expect((await s.request('account/read', {})).error).toMatchObject({ code: -32603, data: { reason: 'storage_failed' } });
    });
  });

  it('answers storage_failed without notifications when CODEX_HOME cannot be created, keeping the state', async () => {
    const parent = join(tempHome(), 'a-file');
    writeFileSync(parent, 'x');
    const s = await start({ home: join(parent, 'home') });
    const from = s.messages.length;
    const response = await s.request('account/login/start', { type: 'apiKey', apiKey: 'sk-nowhere' });
    expect(response.error).toMatchObject({ code: -32603, data: { reason: 'storage_failed', recovery: 'check_codex_home' } });
    expect(response.error.message).toMatch(/^failed to save api key: /);
    await settle(s);
    expect(s.messages.slice(from)).toEqual([response]);
    expect((await s.request('account/read', {})).result).toEqual(LOGGED_OUT);
  });

  it('keeps the previous key when a later save fails', async () => {
    const home = tempHome();
    let s = await start({ home });
    await s.request('account/login/start', { type: 'apiKey', apiKey: 'sk-first' });
    await s.close();
    // Make the next atomic write fail: the lock file path becomes a directory-less path component.
    const { rmSync, mkdirSync } = await import('node:fs');
    rmSync(join(home, 'auth.json.lock'));
    mkdirSync(join(home, 'auth.json.lock', 'blocker'), { recursive: true });
    s = await start({ home });
    const response = await s.request('account/login/start', { type: 'apiKey', apiKey: 'sk-second' });
    expect(response.error.data.reason).toBe('storage_failed');
    expect((await s.request('getAuthStatus', { includeToken: true })).result.authToken).toBe('sk-first');
    expect(JSON.parse(readFileSync(join(home, 'auth.json'), 'utf8')).OPENAI_API_KEY).toBe('sk-first');
  });
});
