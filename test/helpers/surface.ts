import { afterEach, beforeAll } from 'vitest';
import { accountsCheck, FakeBackend, type Recorded, type Reply } from './backend.js';
import { Issuer } from './issuer.js';
import { chatgptJwt } from './jwt.js';
import { ServerProcess, type Wire } from './server-process.js';
import { selfSigned } from './tls.js';

/** The four ways a server can be signed in (SPEC §3). */
export type AuthMode = 'loggedOut' | 'apiKey' | 'stored' | 'host';
export const AUTH_MODES: readonly AuthMode[] = ['loggedOut', 'apiKey', 'stored', 'host'];

export interface SurfaceStart {
  mode: AuthMode;
  /** Extra environment (deadlines). */
  env?: Record<string, string>;
  /** `chatgpt_base_url`; the backend's `/backend-api/` by default. */
  baseUrl?: (backend: FakeBackend) => string;
  /** Extra config.toml lines. */
  config?: string;
  /** auth.json to start with instead of the mode's (e.g. a stored login missing an id). */
  auth?: object;
}

export interface Surface {
  s: ServerProcess;
  backend: FakeBackend;
  issuer: Issuer;
  /** The access token the server holds at start (stored or host). */
  accessToken: string;
  /** Requests the backend got on `path` (below `/backend-api/wham/`, or as given when it starts with `/`). */
  calls(path: string): Recorded[];
}

/** Where `wham/<p>` lands on the fake backend with the default base. */
export const wham = (p: string) => `/backend-api/wham/${p}`;

/**
 * Per-test setup of the account-surface tests: the backend is a real HTTPS
 * server on 127.0.0.1 (trusted through SSL_CERT_FILE), the issuer a real
 * HTTP one (the refresh URL), and the server signed in as `mode` asks:
 * stored ChatGPT credentials in auth.json, host tokens through an
 * experimental `chatgptAuthTokens` login, an API key, or nobody.
 */
export function useSurface() {
  let tls: ReturnType<typeof selfSigned>;
  const open: Array<{ s: ServerProcess; backend: FakeBackend; issuer: Issuer }> = [];
  beforeAll(() => {
    tls = selfSigned();
  });
  afterEach(async () => {
    for (const { s, backend, issuer } of open.splice(0)) {
      s.kill();
      await backend.stop();
      await issuer.stop();
    }
  });

  return async function start(options: SurfaceStart): Promise<Surface> {
    const backend = await FakeBackend.start(tls);
    const issuer = await Issuer.start();
    backend.on(wham('accounts/check'), accountsCheck([{ id: 'ws-1', name: 'Acme' }]));
    let auth: object | undefined;
    let accessToken = '';
    if (options.mode === 'apiKey') auth = { auth_mode: 'apikey', OPENAI_API_KEY: 'sk-surface' };
    if (options.mode === 'stored') {
      const tokens = await issuer.issueTokens({ email: 'a@b.c', accountId: 'ws-1', planType: 'pro', userId: 'user-1' });
      accessToken = tokens.access_token;
      auth = {
        auth_mode: 'chatgpt',
        OPENAI_API_KEY: null,
        tokens: { ...tokens, account_id: 'ws-1' },
        last_refresh: new Date().toISOString(),
      };
    }
    if (options.auth) auth = options.auth;
    const baseUrl = options.baseUrl?.(backend) ?? backend.baseUrl;
    const s = ServerProcess.start({
      config: `chatgpt_base_url = "${baseUrl}"\n${options.config ?? ''}`,
      ...(auth ? { auth } : {}),
      env: {
        SSL_CERT_FILE: tls.certPath,
        CODEX_REFRESH_TOKEN_URL_OVERRIDE: issuer.refreshUrl,
        CODEX_REVOKE_TOKEN_URL_OVERRIDE: issuer.revokeUrl,
        ...options.env,
      },
    });
    open.push({ s, backend, issuer });
    await s.initialize();
    if (options.mode === 'host') {
      accessToken = hostToken('first');
      const login = await s.request('account/login/start', { type: 'chatgptAuthTokens', accessToken, chatgptAccountId: 'ws-1' });
      if (login.error) throw new Error(`host login failed: ${JSON.stringify(login.error)}`);
      await s.notification('account/login/completed');
    }
    const calls = (path: string) => backend.requestsTo(path.startsWith('/') ? path : wham(path));
    return { s, backend, issuer, accessToken, calls };
  };
}

/** A host access token for workspace `ws-1`, told apart by `tag`. */
export function hostToken(tag: string): string {
  return chatgptJwt({ accountId: 'ws-1', userId: `user-${tag}`, email: `${tag}@b.c` });
}

/** Answers the server's `account/chatgptAuthTokens/refresh` request as the host would. */
export async function answerHostRefresh(s: ServerProcess, accessToken: string): Promise<Wire> {
  const request = await s.waitFor((m) => m.method === 'account/chatgptAuthTokens/refresh' && 'id' in m);
  s.send({ id: request.id, result: { accessToken, chatgptAccountId: 'ws-1', chatgptPlanType: null } });
  return request;
}

/** A route that answers 401 to every token but `good`, which gets `reply`. */
export function onlyFor(good: () => string, reply: Reply): (req: Recorded) => Reply {
  return (req) => (req.headers.authorization === `Bearer ${good()}` ? reply : { status: 401, json: { error: 'token_expired' } });
}

/** A route that never answers (the server's deadline must end the call). */
export const silence = (): Promise<Reply> => new Promise<Reply>(() => {});
