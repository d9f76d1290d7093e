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
