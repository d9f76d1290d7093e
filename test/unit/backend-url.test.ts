import { describe, expect, it } from 'vitest';
import { backendUrl } from '../../src/effects/backend-url.js';

describe('backendUrl (SPEC-account-surface §12.2)', () => {
  it('appends wham/ to the default base', () => {
    expect(backendUrl('https://chatgpt.com/backend-api/', 'usage')).toBe('https://chatgpt.com/backend-api/wham/usage');
  });

  it('appends wham/ to any base that contains /backend-api, such as a test backend', () => {
    expect(backendUrl('https://127.0.0.1:4443/backend-api/', 'rate-limit-reset-credits')).toBe(
      'https://127.0.0.1:4443/backend-api/wham/rate-limit-reset-credits',
    );
  });

  it('appends api/codex/ to a bare origin', () => {
    expect(backendUrl('https://h/', 'profiles/me')).toBe('https://h/api/codex/profiles/me');
  });

  it('appends api/codex/ after a custom prefix', () => {
    expect(backendUrl('https://h/custom/prefix', 'profiles/me')).toBe('https://h/custom/prefix/api/codex/profiles/me');
  });

  it('trims any number of trailing slashes from the base', () => {
    expect(backendUrl('https://h/custom///', 'usage')).toBe('https://h/custom/api/codex/usage');
  });

  it('adds /backend-api to a chatgpt.com base that lacks it, as the reference does', () => {
    expect(backendUrl('https://chatgpt.com', 'usage')).toBe('https://chatgpt.com/backend-api/wham/usage');
    expect(backendUrl('https://chat.openai.com/', 'accounts/check')).toBe('https://chat.openai.com/backend-api/wham/accounts/check');
  });

  it('keeps a /backend-api that sits deeper in the path', () => {
    expect(backendUrl('https://proxy.example/tenant/backend-api', 'usage')).toBe('https://proxy.example/tenant/backend-api/wham/usage');
  });

  it('accepts a path given with a leading slash', () => {
    expect(backendUrl('https://chatgpt.com/backend-api/', '/usage')).toBe('https://chatgpt.com/backend-api/wham/usage');
  });
});
