import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { accountsCheck, FakeBackend } from '../helpers/backend.js';
import { chatgptJwt } from '../helpers/jwt.js';
import { useServers } from '../helpers/server-process.js';
import { selfSigned } from '../helpers/tls.js';

describe('SSL_CERT_FILE (SPEC §4)', () => {
  const env = useServers();
  let tls: ReturnType<typeof selfSigned>;
  let backend: FakeBackend;
  beforeAll(() => {
    tls = selfSigned();
  });
  afterEach(async () => backend?.stop());

  async function tokensLogin(extraEnv: Record<string, string | undefined>) {
    backend = await FakeBackend.start(tls);
    backend.on('/backend-api/wham/accounts/check', accountsCheck([{ id: 'ws-1', name: 'Acme' }]));
    const s = await env.start({ config: `chatgpt_base_url = "${backend.baseUrl}"\n`, env: extraEnv });
    await s.request('account/login/start', { type: 'chatgptAuthTokens', accessToken: chatgptJwt({ accountId: 'ws-1' }), chatgptAccountId: 'ws-1' });
    return (await s.notification('account/login/completed')).params;
  }

  it('trusts a backend whose certificate is in SSL_CERT_FILE', async () => {
    expect(await tokensLogin({ SSL_CERT_FILE: tls.certPath })).toMatchObject({ success: true });
    expect(backend.requests).toHaveLength(1);
  });

  it('refuses the same backend without it', async () => {
    expect(await tokensLogin({ SSL_CERT_FILE: undefined })).toMatchObject({ success: false, error: 'workspace routing discovery failed' });
  });
});
