import { describe, expect, it } from 'vitest';
import {
  errorText,
  HOST_REFRESH_TEXT,
  loginEndedMessage,
  loginErrors,
  loginFailedMessage,
  SURFACE_TEXT,
  surfaceRefusal,
  workspaceRestrictionMessage,
} from '../../machines/wording.js';

/**
 * The texts that reach the wire, against the reference's words in SPEC.md,
 * SPEC-account-surface.md and docs/chatgpt-login.md (which records the login
 * texts the reference gives).
 */

describe('errorText: the message a failure shows', () => {
  it('gives fixed refusals their reference text (SPEC §3.2)', () => {
    expect(errorText({ kind: 'apiKeyLoginDisabled' })).toBe('API key login is disabled. Use ChatGPT login instead.');
    expect(errorText({ kind: 'chatgptLoginDisabled' })).toBe('ChatGPT login is disabled. Use API key login instead.');
    expect(errorText({ kind: 'externalAuthDisabled' })).toBe('External ChatGPT auth is disabled. Use API key login instead.');
  });

  it('names the experimental capability a host-token login needs (SPEC §9.1)', () => {
    expect(errorText({ kind: 'experimentalApiRequired' })).toBe(
      'account/login/start.chatgptAuthTokens requires experimentalApi capability',
    );
  });

  it('prints the forced workspaces and the received id like Rust debug formatting (SPEC §9.1)', () => {
    expect(errorText({ kind: 'workspaceNotAllowed', allowed: ['ws-1', 'ws-3'], received: 'ws-2' })).toBe(
      'External auth must use one of workspace(s) ["ws-1", "ws-3"], but received "ws-2".',
    );
  });

  it('prints an empty list and an empty id when the refusal carries neither', () => {
    expect(errorText({ kind: 'workspaceNotAllowed' })).toBe('External auth must use one of workspace(s) [], but received "".');
  });

  it('reports an undecodable host token as an invalid ID token format (SPEC §9.1)', () => {
    expect(errorText({ kind: 'invalidToken' })).toBe('failed to set external auth: invalid ID token format');
  });

  it('prefixes a host-token decode failure that has its own detail', () => {
    expect(errorText({ kind: 'invalidToken', message: 'missing claims' })).toBe('failed to set external auth: missing claims');
  });

  it('uses a failure’s own message where the kind has no fixed text', () => {
    expect(errorText({ kind: 'storageFailed', message: 'failed to save api key: EROFS' })).toBe('failed to save api key: EROFS');
    expect(errorText({ kind: 'loginNotFound', message: 'gone' })).toBe('gone');
  });

  it('falls back to a generic text when such a failure carries no message', () => {
    expect(errorText({ kind: 'storageFailed' })).toBe('storage failed');
    expect(errorText({ kind: 'authFileCorrupt' })).toBe('auth.json is not valid');
    expect(errorText({ kind: 'invalidLoginId' })).toBe('invalid login id');
    expect(errorText({ kind: 'loginFailed' })).toBe('Login was not completed');
    expect(errorText({ kind: 'backendTimeout' })).toBe('backend request timed out');
  });

  it('words the discovery failures as the reference does (SPEC §9.1, §9.2)', () => {
    expect(errorText({ kind: 'discoveryFailed' })).toBe('workspace routing discovery failed');
    expect(errorText({ kind: 'workspaceMissing' })).toBe('selected workspace missing from routing discovery');
    expect(errorText({ kind: 'accountIdMissing' })).toBe('workspace routing requires a ChatGPT account id');
  });

  it('keeps the fixed text of a kind even when the failure carries another message', () => {
    expect(errorText({ kind: 'workspaceMissing', message: 'something else' })).toBe('selected workspace missing from routing discovery');
  });

  it('words the rate-limit refusals as the reference does (SPEC §10)', () => {
    expect(errorText({ kind: 'rateLimitsNeedAuth' })).toBe('codex account authentication required to read rate limits');
    expect(errorText({ kind: 'rateLimitsNeedChatgpt' })).toBe('chatgpt authentication required to read rate limits');
  });

  it('words the parameter checks of the account surface (SPEC-account-surface §12.1)', () => {
    expect(errorText({ kind: 'emptyIdempotencyKey' })).toBe('idempotencyKey must not be empty');
    expect(errorText({ kind: 'emptyCreditId' })).toBe('creditId must not be empty');
    expect(errorText({ kind: 'invalidThreadId', message: 'not-a-uuid' })).toBe('invalid thread id: not-a-uuid');
  });

  it('names an unconfigured model provider with curly quotes (SPEC-account-surface §18.2)', () => {
    expect(errorText({ kind: 'modelProviderNotConfigured', modelProvider: 'nope' } as never)).toBe(
      'This chat uses model provider “nope”, which is no longer configured. Restore this provider’s configuration to continue.',
    );
  });

  it('refuses a gateway login for a provider without gateway OAuth (SPEC-account-surface §18.3)', () => {
    expect(errorText({ kind: 'gatewayOAuthNotUsed' })).toBe('The selected provider does not use gateway OAuth');
  });

  it('answers a kind it has no text for with the internal error text', () => {
    expect(errorText({ kind: 'noSuchKind' as never })).toBe('internal error');
  });
});

describe('the account surface refusals (SPEC-account-surface §12.1)', () => {
  it('asks a logged-out host for an account, naming what the method needs it for', () => {
    expect(surfaceRefusal('account', 'usage')).toEqual({
      kind: 'accountAuthRequired',
      message: 'codex account authentication required to read token usage',
    });
    expect(surfaceRefusal('account', 'consume').message).toBe('codex account authentication required for rate limit reset credits');
  });

  it('asks a host with an API key for ChatGPT auth', () => {
    expect(surfaceRefusal('chatgpt', 'workspaceMessages')).toEqual({
      kind: 'chatgptAuthRequired',
      message: 'chatgpt authentication required to read workspace messages',
    });
    expect(surfaceRefusal('chatgpt', 'nudge').message).toBe('chatgpt authentication required to notify workspace owner');
  });

  it('has the reference’s prefix for each backend failure (§12.3)', () => {
    expect(SURFACE_TEXT.prefix).toMatchObject({
      usage: 'failed to fetch token usage profile',
      threadUsage: 'failed to fetch thread usage',
      workspaceMessages: 'failed to fetch workspace messages',
      consume: 'failed to consume rate limit reset',
      nudge: 'failed to notify workspace owner',
    });
  });

  it('has the reference’s answer for each deadline (§12.4)', () => {
    expect(SURFACE_TEXT.timedOut).toMatchObject({
      usage: 'token usage profile fetch timed out',
      threadUsage: 'thread usage fetch timed out',
      workspaceMessages: 'workspace messages fetch timed out',
      consume: 'rate limit reset consume timed out',
    });
  });
});

describe('login texts (SPEC §3.2, §3.3, docs/chatgpt-login.md)', () => {
  it('ends a cancelled browser login with the login server’s prefix', () => {
    expect(loginEndedMessage('browser', 'notCompleted')).toBe('Login server error: Login was not completed');
    expect(loginEndedMessage('browser', 'cancelled')).toBe('Login server error: Login cancelled');
  });

  it('ends a cancelled device login without a prefix', () => {
    expect(loginEndedMessage('device', 'notCompleted')).toBe('Login was not completed');
    expect(loginEndedMessage('device', 'cancelled')).toBe('Login cancelled');
  });

  it('words a failed code exchange per flow', () => {
    expect(loginErrors.exchange('browser', 'invalid_grant')).toBe('Login server error: Token exchange failed: invalid_grant');
    expect(loginErrors.exchange('device', 'invalid_grant')).toBe('device code exchange failed: invalid_grant');
  });

  it('names the allowed workspaces when a login lands in another one', () => {
    expect(loginErrors.workspace('browser', ['ws-1', 'ws-3'], 'ws-2')).toBe(
      'Login server error: Login is restricted to workspace id(s) ws-1, ws-3.',
    );
    expect(loginErrors.workspace('device', ['ws-1', 'ws-3'], 'ws-2')).toBe('Login is restricted to workspace id(s) ws-1, ws-3.');
  });

  it('says the token lacked an account id when a restricted login has none', () => {
    expect(loginErrors.workspace('device', ['ws-1'], null)).toBe(
      'Login is restricted to a specific workspace, but the token did not include an chatgpt_account_id claim.',
    );
  });

  it('says the credentials could not be saved', () => {
    expect(loginErrors.save('browser')).toBe('Login server error: Sign-in completed but credentials could not be saved locally.');
    expect(loginErrors.save('device')).toBe('Sign-in completed but credentials could not be saved locally.');
  });

  it('reports a failed login with the failure’s own text, else its kind’s text', () => {
    expect(loginFailedMessage({ kind: 'loginServerFailed', message: 'failed to start login server: Port 127.0.0.1:1457 is already in use' })).toBe(
      'failed to start login server: Port 127.0.0.1:1457 is already in use',
    );
    expect(loginFailedMessage({ kind: 'redirectStateMismatch' })).toBe('State mismatch');
  });
});

describe('host token refresh texts (SPEC §9.3)', () => {
  it('refuses credentials of another workspace, naming the allowed ones and the received one', () => {
    const policy = { forcedLoginMethod: null, forcedWorkspaceIds: ['ws-1'] };
    expect(workspaceRestrictionMessage(policy, 'ws-2')).toBe('Login is restricted to workspace(s) ws-1, but current credentials belong to ws-2');
  });

  it('lists several allowed workspaces separated by commas', () => {
    const policy = { forcedLoginMethod: null, forcedWorkspaceIds: ['ws-1', 'ws-3'] };
    expect(workspaceRestrictionMessage(policy, 'ws-2')).toBe(
      'Login is restricted to workspace(s) ws-1, ws-3, but current credentials belong to ws-2',
    );
  });

  it('says the credentials belong to no workspace when they carry no account id', () => {
    const policy = { forcedLoginMethod: null, forcedWorkspaceIds: ['ws-1'] };
    expect(workspaceRestrictionMessage(policy, null)).toBe(
      'Login is restricted to workspace(s) ws-1, but current credentials belong to no workspace',
    );
  });

  it('gives a JSON-RPC error answer’s code', () => {
    expect(HOST_REFRESH_TEXT.failed(-32603)).toBe('auth refresh request failed: code=-32603');
  });

  it('prints a deadline in whole seconds as the reference does', () => {
    expect(HOST_REFRESH_TEXT.timedOut(10_000)).toBe('auth refresh request timed out after 10s');
  });

  it('prints a deadline that is not whole seconds in milliseconds', () => {
    expect(HOST_REFRESH_TEXT.timedOut(300)).toBe('auth refresh request timed out after 300ms');
    expect(HOST_REFRESH_TEXT.timedOut(1_500)).toBe('auth refresh request timed out after 1500ms');
  });

  it('says an unusable answer returned invalid credentials', () => {
    expect(HOST_REFRESH_TEXT.invalid).toBe('auth refresh returned invalid credentials');
    expect(errorText({ kind: 'hostRefreshFailed' })).toBe('auth refresh returned invalid credentials');
  });
});
