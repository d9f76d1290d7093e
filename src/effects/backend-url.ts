/**
 * Where a ChatGPT-backend call goes (SPEC-account-surface §12.2, the reference's
 * `PathStyle`): trailing slashes are trimmed from `chatgpt_base_url`; a
 * `chatgpt.com` or `chat.openai.com` base without `/backend-api` gets it; then
 * a base containing `/backend-api` takes `wham/<path>`, any other base
 * `api/codex/<path>`. `path` is the part after that prefix, e.g. `usage`,
 * `rate-limit-reset-credits` or `accounts/check`.
 *
 * `backendUrl('https://chatgpt.com/backend-api/', 'usage')` → `https://chatgpt.com/backend-api/wham/usage`;
 * `backendUrl('https://h/custom/prefix', 'profiles/me')` → `https://h/custom/prefix/api/codex/profiles/me`.
 */
export function backendUrl(base: string, path: string): string {
  let root = base.replace(/\/+$/, '');
  if (/^https:\/\/(chatgpt\.com|chat\.openai\.com)/.test(root) && !root.includes('/backend-api')) root += '/backend-api';
  const prefix = root.includes('/backend-api') ? 'wham' : 'api/codex';
  return `${root}/${prefix}/${path.replace(/^\/+/, '')}`;
}
