/** An unsigned JWT with the given claims; the server decodes without verifying (SPEC §3.0). */
export function makeJwt(claims: Record<string, unknown>): string {
  const part = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
  return `${part({ alg: 'RS256', typ: 'JWT' })}.${part(claims)}.${Buffer.from('signature').toString('base64url')}`;
}

/** Claims as ChatGPT puts them: email at the top, the rest under the auth claim. */
export function chatgptJwt(opts: { email?: string; accountId?: string; planType?: string; userId?: string; exp?: number } = {}): string {
  const auth: Record<string, unknown> = {};
  if (opts.accountId !== undefined) auth.chatgpt_account_id = opts.accountId;
  if (opts.planType !== undefined) auth.chatgpt_plan_type = opts.planType;
  if (opts.userId !== undefined) auth.chatgpt_user_id = opts.userId;
  return makeJwt({
    ...(opts.email === undefined ? {} : { email: opts.email }),
    'https://api.openai.com/auth': auth,
    exp: opts.exp ?? Math.floor(Date.now() / 1000) + 3600,
  });
}

/** auth.json of a managed ChatGPT login, in the layout of SPEC §5. */
export function chatgptAuthFile({ accountId = 'ws-1', planType = 'pro' }: { accountId?: string; planType?: string } = {}) {
  return {
    auth_mode: 'chatgpt',
    OPENAI_API_KEY: 'sk-exchanged',
    tokens: {
      id_token: chatgptJwt({ email: 'a@b.c', accountId, planType, userId: 'user-1' }),
      access_token: chatgptJwt({ accountId }),
      refresh_token: 'rt-1',
      oauth_provenance: { issuer: 'https://auth.openai.com', client_id: 'app_EMoamEEZ73f0CkXaXp7hrann' },
      login_owner_id: 'x'.repeat(43),
      account_id: accountId,
    },
    last_refresh: '2026-11-25T00:24:43.123456789Z',
  };
}
