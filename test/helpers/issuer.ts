import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SignJWT, jwtVerify } from 'jose';

export const CLIENT_ID = 'app_EMoamEEZ73f0CkXaXp7hrann';
export const SCOPE = 'openid profile email offline_access api.connectors.read api.connectors.invoke';
const AUTH_CLAIM = 'https://api.openai.com/auth';

/** Who is signed in at the issuer. */
export interface IssuerUser {
  email: string;
  accountId: string | null;
  planType: string;
  userId: string;
}

/** How the token endpoint answers the authorization-code grant. */
export type TokenMode =
  | 'normal'
  | 'notJson'
  | 'missingRefreshToken'
  | 'idTokenNotJwt'
  | 'serverError'
  /** Accept the connection, never answer. */
  | 'hang'
  /** Destroy the socket. */
  | 'down';

export interface IssuerRequest {
  method: string;
  path: string;
  /** The raw query string (order matters for the authorize URL). */
  query: string;
  headers: IncomingMessage['headers'];
  body: string;
  /** When it arrived (ms since the epoch). */
  at: number;
}

interface CodeRecord {
  challenge: string;
  redirectUri: string;
  used: boolean;
  user: IssuerUser;
}

interface RefreshRecord {
  status: 'active' | 'used' | 'revoked' | 'expired';
  user: IssuerUser;
}

interface DeviceRecord {
  deviceAuthId: string;
  userCode: string;
  approved: boolean;
  code: string | null;
  verifier: string;
}

const b64 = (bytes: number) => randomBytes(bytes).toString('base64url');

/** `[k1, k2, …]` of a form or JSON body, in order. */
const keysOf = (entries: Iterable<[string, unknown]>) => [...entries].map(([k]) => k);

/**
 * An OAuth issuer stand-in on 127.0.0.1 that checks what it receives as the
 * real one would: PKCE S256 (verifier against challenge), `state` round trip,
 * exact form fields in the reference's order, single-use codes, rotating
 * refresh tokens (a second use is refused with 401 `refresh_token_reused`),
 * revocation, and the device-code endpoints. Tokens are JWTs signed with jose.
 * Every secret it issues or receives is collected in `secrets` so tests can
 * check none of them reached a log line, an error or a snapshot.
 */
export class Issuer {
  readonly requests: IssuerRequest[] = [];
  /** Every code, token, verifier, state, device id and API key seen or issued. */
  readonly secrets = new Set<string>();
  user: IssuerUser = { email: 'a@b.c', accountId: 'ws-1', planType: 'plus', userId: 'user-1' };
  /** What `/oauth/authorize` does: approve, or redirect back with `error=`. */
  authorize: 'approve' | { error: string; description?: string } = 'approve';
  tokenMode: TokenMode = 'normal';
  /** Delay before the token endpoint answers (slow issuer). */
  tokenDelayMs = 0;
  apiKeyMode: 'normal' | 'fail' = 'normal';
  refreshMode: 'normal' | 'serverError' | 'notJson' = 'normal';
  /** Delay before the refresh grant is looked at (slow issuer; overlapping refreshes). */
  refreshDelayMs = 0;
  deviceMode: 'normal' | 'disabled' | 'serverError' | 'pollServerError' = 'normal';
  /** `interval` of the user-code answer (seconds as a string, SPEC §7). */
  deviceInterval = '0.05';
  /** `expires_at` of the user-code answer, from now. */
  deviceExpiresInMs = 15 * 60_000;
  /** Awaited before any request is answered (after it is recorded): a test holds the issuer's answers with it. */
  hold: ((request: IssuerRequest) => Promise<void> | void) | null = null;

  readonly #codes = new Map<string, CodeRecord>();
  readonly #refresh = new Map<string, RefreshRecord>();
  readonly #devices = new Map<string, DeviceRecord>();
  readonly #key = new TextEncoder().encode(b64(32));
  readonly #server: Server;
  #port = 0;

  private constructor() {
    this.#server = createServer((req, res) => void this.#handle(req, res));
  }

  static async start(): Promise<Issuer> {
    const issuer = new Issuer();
    await new Promise<void>((resolve) => issuer.#server.listen(0, '127.0.0.1', resolve));
    issuer.#port = (issuer.#server.address() as AddressInfo).port;
    return issuer;
  }

  get origin(): string {
    return `http://127.0.0.1:${this.#port}`;
  }

  /** The refresh URL (`CODEX_REFRESH_TOKEN_URL_OVERRIDE`): the token endpoint, JSON body. */
  get refreshUrl(): string {
    return `${this.origin}/oauth/token`;
  }

  get revokeUrl(): string {
    return `${this.origin}/oauth/revoke`;
  }

  requestsTo(path: string): IssuerRequest[] {
    return this.requests.filter((r) => r.path === path);
  }

  /** The user approves the device code on the verification page. */
  approveDevice(userCode: string): void {
    for (const device of this.#devices.values()) if (device.userCode === userCode) device.approved = true;
  }

  /** Tokens for `user` as a fresh login would get them; the refresh token is active. */
  async issueTokens(user: IssuerUser = this.user): Promise<{ id_token: string; access_token: string; refresh_token: string }> {
    const auth = {
      chatgpt_plan_type: user.planType,
      chatgpt_user_id: user.userId,
      ...(user.accountId === null ? {} : { chatgpt_account_id: user.accountId }),
    };
    const sign = (claims: Record<string, unknown>) =>
      new SignJWT(claims)
        .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
        .setIssuer(this.origin)
        .setAudience(CLIENT_ID)
        .setIssuedAt()
        .setExpirationTime('1h')
        .setJti(b64(8))
        .sign(this.#key);
    const tokens = {
      id_token: await sign({ email: user.email, [AUTH_CLAIM]: auth }),
      access_token: await sign({ [AUTH_CLAIM]: auth, scp: SCOPE.split(' ') }),
      refresh_token: `rt-${b64(24)}`,
    };
    this.#refresh.set(tokens.refresh_token, { status: 'active', user });
    for (const t of Object.values(tokens)) this.secrets.add(t);
    return tokens;
  }

  /** Marks a refresh token as expired at the issuer. */
  expireRefreshToken(token: string): void {
    const record = this.#refresh.get(token);
    if (record) record.status = 'expired';
  }

  async stop(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let body = '';
    req.setEncoding('utf8');
    for await (const chunk of req) body += chunk;
    const url = new URL(req.url ?? '/', this.origin);
    const recorded = { method: req.method ?? '', path: url.pathname, query: url.search.slice(1), headers: req.headers, body, at: Date.now() };
    this.requests.push(recorded);
    if (this.hold) await this.hold(recorded);
    const json = (status: number, value: unknown) => {
      res.writeHead(status, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify(value));
    };
    const isJson = (req.headers['content-type'] ?? '').startsWith('application/json');
    try {
      switch (`${req.method} ${url.pathname}`) {
        case 'GET /oauth/authorize':
          return this.#authorize(url, res);
        case 'POST /oauth/token':
          if (isJson) return await this.#refreshGrant(req, body, json, res);
          return await this.#tokenForm(req, body, json, res);
        case 'POST /oauth/revoke':
          return this.#revoke(body, json);
        case 'POST /api/accounts/deviceauth/usercode':
          return this.#userCode(body, json);
        case 'POST /api/accounts/deviceauth/token':
          return this.#devicePoll(body, json);
        default:
          res.writeHead(404, { 'Content-Type': 'text/plain' });
          res.end('Not Found');
      }
    } catch (error) {
      json(500, { error: 'server_error', error_description: (error as Error).message });
    }
  }

  #authorize(url: URL, res: ServerResponse): void {
    const q = url.searchParams;
    const problems: string[] = [];
    const expect = (name: string, ok: boolean) => {
      if (!ok) problems.push(name);
    };
    expect('response_type', q.get('response_type') === 'code');
    expect('client_id', q.get('client_id') === CLIENT_ID);
    const redirectUri = q.get('redirect_uri') ?? '';
    expect('redirect_uri', /^http:\/\/127\.0\.0\.1:\d+\/auth\/callback$/.test(redirectUri));
    expect('code_challenge', /^[A-Za-z0-9_-]{43}$/.test(q.get('code_challenge') ?? ''));
    expect('code_challenge_method', q.get('code_challenge_method') === 'S256');
    expect('state', /^[A-Za-z0-9_-]{43}$/.test(q.get('state') ?? ''));
    expect('scope', q.get('scope') === SCOPE);
    if (problems.length > 0) {
      res.writeHead(400, { 'Content-Type': 'text/plain' });
      res.end(`invalid authorize request: ${problems.join(', ')}`);
      return;
    }
    const state = q.get('state')!;
    this.secrets.add(state);
    const back = new URL(redirectUri);
    if (this.authorize === 'approve') {
      const code = `code-${b64(24)}`;
      this.secrets.add(code);
      this.#codes.set(code, { challenge: q.get('code_challenge')!, redirectUri, used: false, user: this.user });
      back.search = new URLSearchParams([
        ['code', code],
        ['scope', SCOPE],
        ['state', state],
      ]).toString();
    } else {
      back.search = new URLSearchParams([
        ['error', this.authorize.error],
        ...(this.authorize.description ? [['error_description', this.authorize.description] as [string, string]] : []),
        ['state', state],
      ]).toString();
    }
    res.writeHead(302, { Location: back.toString() });
    res.end();
  }

  async #tokenForm(req: IncomingMessage, body: string, json: (s: number, v: unknown) => void, res: ServerResponse): Promise<void> {
    if (req.headers['content-type'] !== 'application/x-www-form-urlencoded') {
      return json(400, { error: 'invalid_request', error_description: 'expected a form body' });
    }
    const form = new URLSearchParams(body);
    const keys = keysOf(form);
    if (form.get('client_id') !== CLIENT_ID) return json(400, { error: 'invalid_client' });
    if (form.get('grant_type') === 'authorization_code') {
      for (const k of ['code', 'code_verifier']) this.secrets.add(form.get(k) ?? '');
      if (keys.join() !== 'grant_type,client_id,code,redirect_uri,code_verifier') {
        return json(400, { error: 'invalid_request', error_description: `unexpected fields ${keys.join()}` });
      }
      if (this.tokenDelayMs > 0) await new Promise((r) => setTimeout(r, this.tokenDelayMs));
      if (this.tokenMode === 'hang') return;
      if (this.tokenMode === 'down') {
        req.socket.destroy();
        return;
      }
      if (this.tokenMode === 'serverError') return json(500, { error: 'server_error', error_description: 'the issuer is having a bad day' });
      const record = this.#codes.get(form.get('code')!);
      if (!record) return json(400, { error: 'invalid_grant', error_description: 'unknown authorization code' });
      if (record.used) return json(400, { error: 'invalid_grant', error_description: 'authorization code already used' });
      record.used = true;
      if (record.redirectUri !== form.get('redirect_uri')) return json(400, { error: 'invalid_grant', error_description: 'redirect_uri mismatch' });
      const challenge = createHash('sha256').update(form.get('code_verifier') ?? '').digest('base64url');
      if (challenge !== record.challenge) return json(400, { error: 'invalid_grant', error_description: 'PKCE verification failed' });
      const tokens = await this.issueTokens(record.user);
      switch (this.tokenMode) {
        case 'notJson':
          res.writeHead(200, { 'Content-Type': 'text/html' });
          res.end('<html>upstream proxy error</html>');
          return;
        case 'missingRefreshToken':
          return json(200, { id_token: tokens.id_token, access_token: tokens.access_token });
        case 'idTokenNotJwt':
          return json(200, { ...tokens, id_token: 'not-a-jwt' });
        default:
          return json(200, { ...tokens, token_type: 'Bearer', expires_in: 3600 });
      }
    }
    if (form.get('grant_type') === 'urn:ietf:params:oauth:grant-type:token-exchange') {
      if (keys.join() !== 'grant_type,client_id,requested_token,subject_token,subject_token_type') {
        return json(400, { error: 'invalid_request', error_description: `unexpected fields ${keys.join()}` });
      }
      if (form.get('requested_token') !== 'openai-api-key' || form.get('subject_token_type') !== 'urn:ietf:params:oauth:token-type:id_token') {
        return json(400, { error: 'invalid_request' });
      }
      if (this.apiKeyMode === 'fail') return json(403, { error: 'access_denied', error_description: 'no API organization' });
      try {
        await jwtVerify(form.get('subject_token') ?? '', this.#key, { issuer: this.origin, audience: CLIENT_ID });
      } catch {
        return json(400, { error: 'invalid_grant', error_description: 'subject_token is not an id token of this issuer' });
      }
      const apiKey = `sk-proj-${b64(24)}`;
      this.secrets.add(apiKey);
      return json(200, { access_token: apiKey, token_type: 'Bearer' });
    }
    return json(400, { error: 'unsupported_grant_type' });
  }

  async #refreshGrant(req: IncomingMessage, body: string, json: (s: number, v: unknown) => void, res: ServerResponse): Promise<void> {
    const parsed = JSON.parse(body) as Record<string, string>;
    this.secrets.add(parsed.refresh_token ?? '');
    const keys = keysOf(Object.entries(parsed));
    if (keys.join() !== 'client_id,grant_type,refresh_reason,refresh_token') {
      return json(400, { error: 'invalid_request', error_description: `unexpected fields ${keys.join()}` });
    }
    if (parsed.client_id !== CLIENT_ID || parsed.grant_type !== 'refresh_token') return json(400, { error: 'invalid_request' });
    if (!req.headers.originator || !req.headers['user-agent']) return json(400, { error: 'invalid_request', error_description: 'missing headers' });
    if (this.refreshDelayMs > 0) await new Promise((r) => setTimeout(r, this.refreshDelayMs));
    if (this.refreshMode === 'serverError') return json(502, { error: 'bad_gateway' });
    if (this.refreshMode === 'notJson') {
      res.writeHead(200, { 'Content-Type': 'text/html' });
      res.end('<html>maintenance</html>');
      return;
    }
    const record = this.#refresh.get(parsed.refresh_token ?? '');
    // Three body shapes the reference reads (SPEC §8.1): {error:{code}}, {error}, {code}.
    if (!record) return json(401, { error: { code: 'invalid_grant', message: 'unknown refresh token' } });
    if (record.status === 'used') return json(401, { error: { code: 'refresh_token_reused', message: 'refresh token already used' } });
    if (record.status === 'expired') return json(401, { error: 'refresh_token_expired' });
    if (record.status === 'revoked') return json(401, { code: 'refresh_token_invalidated' });
    record.status = 'used';
    return json(200, await this.issueTokens(record.user));
  }

  #revoke(body: string, json: (s: number, v: unknown) => void): void {
    const parsed = JSON.parse(body) as Record<string, string>;
    const record = this.#refresh.get(parsed.token ?? '');
    if (record && parsed.client_id === CLIENT_ID) record.status = 'revoked';
    json(200, {});
  }

  #userCode(body: string, json: (s: number, v: unknown) => void): void {
    if (this.deviceMode === 'disabled') return json(404, { error: 'not_found' });
    if (this.deviceMode === 'serverError') return json(503, { error: 'unavailable' });
    const parsed = JSON.parse(body) as Record<string, string>;
    if (keysOf(Object.entries(parsed)).join() !== 'client_id' || parsed.client_id !== CLIENT_ID) return json(400, { error: 'invalid_request' });
    const letters = () => Array.from(randomBytes(4), (b) => 'ABCDEFGHJKLMNPQRSTUVWXYZ'[b % 24]).join('');
    const device: DeviceRecord = {
      deviceAuthId: `deviceauth-${b64(12)}`,
      userCode: `${letters()}-${letters()}`,
      approved: false,
      code: null,
      verifier: b64(64),
    };
    this.#devices.set(device.deviceAuthId, device);
    this.secrets.add(device.deviceAuthId);
    json(200, {
      device_auth_id: device.deviceAuthId,
      user_code: device.userCode,
      interval: this.deviceInterval,
      expires_at: new Date(Date.now() + this.deviceExpiresInMs).toISOString(),
    });
  }

  #devicePoll(body: string, json: (s: number, v: unknown) => void): void {
    const parsed = JSON.parse(body) as Record<string, string>;
    if (keysOf(Object.entries(parsed)).join() !== 'device_auth_id,user_code') return json(400, { error: 'invalid_request' });
    if (this.deviceMode === 'pollServerError') return json(500, { error: 'server_error' });
    const device = this.#devices.get(parsed.device_auth_id ?? '');
    if (!device || device.userCode !== parsed.user_code) return json(400, { error: 'invalid_request' });
    if (!device.approved) return json(403, { error: 'authorization_pending' });
    if (device.code === null) {
      device.code = `code-${b64(24)}`;
      this.secrets.add(device.code);
      this.secrets.add(device.verifier);
      const challenge = createHash('sha256').update(device.verifier).digest('base64url');
      this.#codes.set(device.code, { challenge, redirectUri: `${this.origin}/deviceauth/callback`, used: false, user: this.user });
    }
    const challenge = createHash('sha256').update(device.verifier).digest('base64url');
    json(200, { authorization_code: device.code, code_challenge: challenge, code_verifier: device.verifier });
  }
}

export interface BrowserStep {
  url: string;
  status: number;
  location: string | null;
  contentType: string | null;
  body: string;
}

/**
 * Follows `authUrl` as a browser would: to the issuer, back to the callback
 * server, on to `/success`, with a real HTTP client and manual redirects.
 * Every hop is returned. A hop that cannot connect ends the walk with status 0.
 */
export async function followAuthUrl(authUrl: string, maxHops = 5): Promise<BrowserStep[]> {
  const steps: BrowserStep[] = [];
  let url: string | null = authUrl;
  while (url !== null && steps.length < maxHops) {
    let response: Response;
    try {
      response = await fetch(url, { redirect: 'manual' });
    } catch {
      steps.push({ url, status: 0, location: null, contentType: null, body: '' });
      break;
    }
    const location = response.headers.get('location');
    steps.push({ url, status: response.status, location, contentType: response.headers.get('content-type'), body: await response.text() });
    url = response.status >= 300 && response.status < 400 && location ? new URL(location, url).toString() : null;
  }
  return steps;
}

/** Follows `authUrl` only as far as the issuer's redirect: the callback URL the browser would open next. */
export async function callbackUrlFrom(authUrl: string): Promise<string> {
  const response = await fetch(authUrl, { redirect: 'manual' });
  const location = response.headers.get('location');
  if (response.status !== 302 || location === null) throw new Error(`the issuer did not redirect (${response.status})`);
  return location;
}

/** auth.json of a managed ChatGPT login whose tokens the issuer stand-in issued (refreshable). */
export async function storedLogin(issuer: Issuer, accountId = 'ws-1'): Promise<object> {
  const tokens = await issuer.issueTokens({ email: 'a@b.c', accountId, planType: 'pro', userId: 'user-1' });
  return { auth_mode: 'chatgpt', OPENAI_API_KEY: null, tokens: { ...tokens, account_id: accountId }, last_refresh: new Date().toISOString() };
}
