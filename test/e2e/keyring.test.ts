import { createHash } from 'node:crypto';
import { readdirSync, realpathSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { accountsCheck } from '../helpers/backend.js';
import { chatgptAuthFile } from '../helpers/jwt.js';
import { CODEX_SERVICE, PrivateKeyring } from '../helpers/keyring.js';
import { LOGGED_OUT, ServerProcess, tempHome, useServers, type StartOptions } from '../helpers/server-process.js';

const KEYRING = 'cli_auth_credentials_store = "keyring"\n';

/** Codex's username for a home (SPEC §5.1), computed here from the spec, not from our code. */
function codexUsername(home: string): string {
  return `cli|${createHash('sha256').update(realpathSync(home)).digest('hex').slice(0, 16)}`;
}

/** The four attributes and the label keyring-rs 3.6.3 gives Codex's item (SPEC §5.1). */
function codexItem(home: string) {
  const username = codexUsername(home);
  return {
    label: `${username}@${CODEX_SERVICE}:default (keyring v3.6.3)`,
    attributes: { service: CODEX_SERVICE, username, target: 'default', application: 'rust-keyring' },
  };
}

describe('cli_auth_credentials_store = "keyring" with an unlocked Secret Service (SPEC §5.1)', () => {
  let keyring: PrivateKeyring;
  beforeAll(async () => {
    keyring = await PrivateKeyring.start();
  });
  afterAll(async () => {
    await keyring?.stop();
  });

  const env = useServers();
  const start = (options: StartOptions = {}) =>
    env.start({ config: KEYRING, ...options, env: { ...keyring.env, ...options.env } });
  const itemsOf = (home: string) => keyring.search({ service: CODEX_SERVICE, username: codexUsername(home) });

  it('saves an API key login in the item Codex reads, as compact JSON, and writes no file', async () => {
    const s = await start();
    expect((await s.request('account/login/start', { type: 'apiKey', apiKey: 'sk-ring' })).result).toEqual({ type: 'apiKey' });
    const items = await itemsOf(s.home);
    expect(items).toHaveLength(1);
    expect(items[0]!.secret).toBe('{"auth_mode":"apikey","OPENAI_API_KEY":"sk-ring"}');
    // Codex's empty lock files appear in every store mode (SPEC §5.1); no credential file does.
    expect(readdirSync(s.home).filter((f) => !f.endsWith('.lock'))).toEqual(['config.toml']);
  });

  it('gives the items it creates the attributes Codex searches by', async () => {
    const s = await start();
    await s.request('account/login/start', { type: 'apiKey', apiKey: 'sk-attrs' });
    const lookup = await keyring.lookup({ service: CODEX_SERVICE, username: codexUsername(s.home), target: 'default' });
    expect(lookup).toBe('{"auth_mode":"apikey","OPENAI_API_KEY":"sk-attrs"}');
    const [item] = await itemsOf(s.home);
    expect(item!.attributes).toMatchObject({ service: CODEX_SERVICE, username: codexUsername(s.home), target: 'default' });
  });

  it('reads the API key back and keeps it across a restart', async () => {
    const home = tempHome();
    let s = await start({ home });
    await s.request('account/login/start', { type: 'apiKey', apiKey: 'sk-restart' });
    expect((await s.request('getAuthStatus', { includeToken: true })).result.authToken).toBe('sk-restart');
    await s.close();
    s = await start({ home });
    expect((await s.request('account/read', {})).result.account).toEqual({ type: 'apiKey' });
    expect((await s.request('getAuthStatus', { includeToken: true })).result.authToken).toBe('sk-restart');
  });

  it('deletes the item at logout and reads logged out after a restart', async () => {
    const home = tempHome();
    let s = await start({ home });
    await s.request('account/login/start', { type: 'apiKey', apiKey: 'sk-bye' });
    expect((await s.request('account/logout')).result).toEqual({});
    expect(await itemsOf(home)).toEqual([]);
    expect((await s.request('account/read', {})).result).toEqual(LOGGED_OUT);
    await s.close();
    s = await start({ home });
    expect((await s.request('account/read', {})).result).toEqual(LOGGED_OUT);
  });

  it('reads an API key item written the way Codex writes it', async () => {
    const home = tempHome();
    const { label, attributes } = codexItem(home);
    await keyring.store(label, attributes, '{"auth_mode":"apikey","OPENAI_API_KEY":"sk-from-codex"}');
    const s = await start({ home });
    expect((await s.request('getAuthStatus', { includeToken: true })).result).toEqual({
      authMethod: 'apikey',
      authToken: 'sk-from-codex',
      requiresOpenaiAuth: true,
    });
  });

  it('notices Codex signing in and out through the keyring, and says so with account/updated', async () => {
    const home = tempHome();
    const { label, attributes } = codexItem(home);
    const s = await start({ home, env: { CODEX_ACCOUNT_SERVER_KEYRING_POLL_MS: '100' } });
    expect((await s.request('account/read', {})).result).toEqual(LOGGED_OUT);
    const from = s.messages.length;
    await keyring.store(label, attributes, '{"auth_mode":"apikey","OPENAI_API_KEY":"sk-codex-later"}');
    expect((await s.notification('account/updated', from, 10_000)).params).toEqual({ authMode: 'apikey', planType: null });
    expect((await s.request('getAuthStatus', { includeToken: true })).result.authToken).toBe('sk-codex-later');
  });

  it('updates a Codex item in place, keeping its label and attributes', async () => {
    const home = tempHome();
    const { label, attributes } = codexItem(home);
    await keyring.store(label, attributes, '{"auth_mode":"apikey","OPENAI_API_KEY":"sk-old"}');
    const s = await start({ home });
    await s.request('account/login/start', { type: 'apiKey', apiKey: 'sk-new' });
    expect(await itemsOf(home)).toEqual([{ label, attributes, secret: '{"auth_mode":"apikey","OPENAI_API_KEY":"sk-new"}' }]);
  });

  it('reads and updates an item that has only service and username', async () => {
    const home = tempHome();
    const username = codexUsername(home);
    await keyring.store('legacy', { service: CODEX_SERVICE, username }, '{"auth_mode":"apikey","OPENAI_API_KEY":"sk-legacy"}');
    const s = await start({ home });
    expect((await s.request('getAuthStatus', { includeToken: true })).result.authToken).toBe('sk-legacy');
    await s.request('account/login/start', { type: 'apiKey', apiKey: 'sk-updated' });
    const items = await itemsOf(home);
    expect(items).toEqual([{ label: 'legacy', attributes: { service: CODEX_SERVICE, username }, secret: '{"auth_mode":"apikey","OPENAI_API_KEY":"sk-updated"}' }]);
  });

  describe('ChatGPT credentials', () => {
    it('reads a ChatGPT item written the way Codex writes it, and keeps it across a restart', async () => {
      const backend = await env.backend();
      backend.on('/backend-api/wham/accounts/check', accountsCheck([{ id: 'ws-1', name: 'Acme' }]));
      const home = tempHome();
      const { label, attributes } = codexItem(home);
      const auth = chatgptAuthFile();
      await keyring.store(label, attributes, JSON.stringify(auth));
      const config = `${KEYRING}chatgpt_base_url = "${backend.baseUrl}"\n`;
      let s = await start({ home, config });
      const account = { type: 'chatgpt', email: 'a@b.c', planType: 'pro', workspaceName: 'Acme' };
      expect((await s.request('account/read', {})).result.account).toEqual(account);
      expect((await s.request('getAuthStatus', { includeToken: true })).result.authToken).toBe(auth.tokens.access_token);
      await s.close();
      s = await start({ home, config });
      expect((await s.request('account/read', {})).result.account).toEqual(account);
      // Reading never rewrites the item.
      expect((await itemsOf(home))[0]!.secret).toBe(JSON.stringify(auth));
    });

    it('revokes the refresh token and deletes the item at logout', async () => {
      const backend = await env.backend();
      backend.on('/oauth/revoke', { status: 200, json: {} });
      const home = tempHome();
      const { label, attributes } = codexItem(home);
      await keyring.store(label, attributes, JSON.stringify(chatgptAuthFile()));
      const s = await start({ home, env: { CODEX_REVOKE_TOKEN_URL_OVERRIDE: `${backend.origin}/oauth/revoke` } });
      expect((await s.request('account/logout')).result).toEqual({});
      expect(JSON.parse(backend.requestsTo('/oauth/revoke')[0]!.body).token).toBe('rt-1');
      expect(await itemsOf(home)).toEqual([]);
      expect((await s.request('account/read', {})).result).toEqual(LOGGED_OUT);
    });

    it('replaces a ChatGPT item with an API key login in the same item', async () => {
      const home = tempHome();
      const { label, attributes } = codexItem(home);
      await keyring.store(label, attributes, JSON.stringify(chatgptAuthFile()));
      const s = await start({ home });
      await s.request('account/login/start', { type: 'apiKey', apiKey: 'sk-switch' });
      expect(await itemsOf(home)).toEqual([{ label, attributes, secret: '{"auth_mode":"apikey","OPENAI_API_KEY":"sk-switch"}' }]);
    });
  });

  describe('an item that is not Codex\'s', () => {
    it.each([
      ['not JSON', 'sk-plain-secret-not-json'],
      ['a wrong layout', '{"OPENAI_API_KEY":42}'],
      ['a token where an object belongs', '{"auth_mode":"chatgpt","tokens":"sk-hidden-token-value"}'],
      ['no credentials at all', '{"something":"else"}'],
    ])('answers reads of %s with auth_file_corrupt and never quotes it', async (_name, secret) => {
      const home = tempHome();
      const { label, attributes } = codexItem(home);
      await keyring.store(label, attributes, secret);
      const s = await start({ home });
      const response = await s.request('account/read', {});
      expect(response.error).toMatchObject({ code: -32603, data: { reason: 'auth_file_corrupt', recovery: 'relogin' } });
      expect(response.error.message).toContain(`username="${codexUsername(home)}"`);
      expect(response.error.message).not.toContain('sk-');
      expect(s.stderr).not.toContain('sk-');
    });

    it('refuses to overwrite it at login and leaves it as it is', async () => {
      const home = tempHome();
      const { label, attributes } = codexItem(home);
      await keyring.store(label, attributes, '{not json');
      const s = await start({ home });
      const response = await s.request('account/login/start', { type: 'apiKey', apiKey: 'sk-would-overwrite' });
      expect(response.error).toMatchObject({ code: -32603, data: { reason: 'auth_file_corrupt' } });
      expect(response.error.message).toMatch(/^failed to save api key: failed to write OAuth tokens to keyring: .*log out/);
      expect(await itemsOf(home)).toEqual([{ label, attributes, secret: '{not json' }]);
    });

    it('removes it at logout, after which a login works', async () => {
      const home = tempHome();
      const { label, attributes } = codexItem(home);
      await keyring.store(label, attributes, '{not json');
      const s = await start({ home });
      expect((await s.request('account/logout')).result).toEqual({});
      await s.stderrMatching(/logout removes the unreadable keyring/);
      expect(await itemsOf(home)).toEqual([]);
      expect((await s.request('account/login/start', { type: 'apiKey', apiKey: 'sk-after' })).result).toEqual({ type: 'apiKey' });
      expect((await itemsOf(home))[0]!.secret).toBe('{"auth_mode":"apikey","OPENAI_API_KEY":"sk-after"}');
    });
  });

  it('leaves one valid item when two processes log in at the same time', async () => {
    const home = tempHome();
    const servers = [ServerProcess.start({ home, config: KEYRING, env: keyring.env }), ServerProcess.start({ home, env: keyring.env })];
    try {
      await Promise.all(servers.map((s) => s.initialize()));
      const keys = ['sk-first', 'sk-second'];
      for (let round = 0; round < 5; round++) {
        const answers = await Promise.all(
          servers.map((s, i) => s.request('account/login/start', { type: 'apiKey', apiKey: `${keys[i]}-${round}` })),
        );
        expect(answers.map((a) => a.result)).toEqual([{ type: 'apiKey' }, { type: 'apiKey' }]);
      }
      const items = await itemsOf(home);
      expect(items).toHaveLength(1);
      expect(['sk-first-4', 'sk-second-4']).toContain(JSON.parse(items[0]!.secret).OPENAI_API_KEY);
      // A third process reads what the last writer left.
      const reader = await start({ home });
      expect((await reader.request('getAuthStatus', { includeToken: true })).result.authToken).toBe(JSON.parse(items[0]!.secret).OPENAI_API_KEY);
    } finally {
      for (const s of servers) s.kill();
    }
  });

  it('writes nothing in the keyring for ephemeral external tokens', async () => {
    const s = await start();
    const { chatgptJwt } = await import('../helpers/jwt.js');
    const response = await s.request('account/login/start', {
      type: 'chatgptAuthTokens',
      accessToken: chatgptJwt({ accountId: 'ws-1', planType: 'pro' }),
      chatgptAccountId: 'ws-1',
      chatgptPlanType: 'pro',
    });
    expect(response.result).toEqual({ type: 'chatgptAuthTokens' });
    expect(await itemsOf(s.home)).toEqual([]);
  });
});
