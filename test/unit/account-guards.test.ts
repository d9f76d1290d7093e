import { describe, expect, it } from 'vitest';
import {
  activeAuthMode,
  activePlanType,
  isLoginMethodAllowed,
  isStoredAuthVisible,
  isWorkspaceAllowed,
  resolvePlanType,
  toFailure,
  toPlanType,
} from '../../machines/account-guards.js';
import type { AccountContext, ExternalTokens, Policy, StoredAuth, StoredChatgpt } from '../../machines/account-types.js';
import { Secret } from '../../machines/secret.js';

/** The predicates and views the machine names as guards, against SPEC §3 and §9. */

const NO_POLICY: Policy = { forcedLoginMethod: null, forcedWorkspaceIds: null };
const FORCE_API: Policy = { forcedLoginMethod: 'api', forcedWorkspaceIds: null };
const FORCE_CHATGPT: Policy = { forcedLoginMethod: 'chatgpt', forcedWorkspaceIds: null };
const ONLY_WS1: Policy = { forcedLoginMethod: null, forcedWorkspaceIds: ['ws-1', 'ws-3'] };

const apiKey: StoredAuth = { kind: 'apiKey', apiKey: new Secret('sk-abc') };

function chatgpt(accountId: string | null, planType: string | null = 'plus'): StoredChatgpt {
  return {
    kind: 'chatgpt',
    idToken: new Secret('id'),
    accessToken: new Secret('access'),
    refreshToken: new Secret('refresh'),
    accountId,
    apiKey: null,
    claims: { email: 'a@b.c', userId: 'user-1', accountId, planType },
    lastRefresh: null,
  };
}

const external: ExternalTokens = { accessToken: new Secret('host'), accountId: 'ws-1', planType: 'team', email: null, userId: null };

function context(fields: Partial<AccountContext>): AccountContext {
  return {
    policy: NO_POLICY,
    client: null,
    stored: null,
    external: null,
    routing: null,
    pending: null,
    storageIssue: null,
    busyWith: null,
    startingRequest: null,
    readWaiters: [],
    pasteWaiters: [],
    backendWaiters: [],
    backendFallbacks: {},
    modelProviders: { selected: 'openai', configured: [] },
    deferred: [],
    announcement: null,
    hostRefreshTimeoutMs: 10_000,
    loginTimeoutMs: 600_000,
    ...fields,
  };
}

describe('plan types (SPEC §3.0, §9.1)', () => {
  it('keeps a plan type the reference knows', () => {
    expect(toPlanType('plus')).toBe('plus');
    expect(toPlanType('enterprise_cbp_usage_based')).toBe('enterprise_cbp_usage_based');
  });

  it('maps an unrecognised plan string to unknown', () => {
    expect(toPlanType('platinum')).toBe('unknown');
    expect(toPlanType('')).toBe('unknown');
  });

  it('takes a host-token login’s plan from the parameter before the token’s claim', () => {
    expect(resolvePlanType('team', 'plus')).toBe('team');
  });

  it('maps an unknown plan parameter to unknown even when the claim is known', () => {
    expect(resolvePlanType('platinum', 'plus')).toBe('unknown');
  });

  it('takes the token’s claim when there is no plan parameter', () => {
    expect(resolvePlanType(null, 'pro')).toBe('pro');
    expect(resolvePlanType(null, 'platinum')).toBe('unknown');
  });

  it('reads unknown when neither the parameter nor the claim names a plan', () => {
    expect(resolvePlanType(null, null)).toBe('unknown');
  });
});

describe('login policy (SPEC §3.2, §4)', () => {
  it('allows both methods when no method is forced', () => {
    expect(isLoginMethodAllowed(NO_POLICY, 'api')).toBe(true);
    expect(isLoginMethodAllowed(NO_POLICY, 'chatgpt')).toBe(true);
  });

  it('allows only the forced method', () => {
    expect(isLoginMethodAllowed(FORCE_API, 'api')).toBe(true);
    expect(isLoginMethodAllowed(FORCE_API, 'chatgpt')).toBe(false);
    expect(isLoginMethodAllowed(FORCE_CHATGPT, 'chatgpt')).toBe(true);
    expect(isLoginMethodAllowed(FORCE_CHATGPT, 'api')).toBe(false);
  });

  it('allows any workspace, even none, without a forced workspace list', () => {
    expect(isWorkspaceAllowed(NO_POLICY, 'ws-9')).toBe(true);
    expect(isWorkspaceAllowed(NO_POLICY, null)).toBe(true);
  });

  it('allows only listed workspaces under a forced list, and never credentials without an account id', () => {
    expect(isWorkspaceAllowed(ONLY_WS1, 'ws-1')).toBe(true);
    expect(isWorkspaceAllowed(ONLY_WS1, 'ws-3')).toBe(true);
    expect(isWorkspaceAllowed(ONLY_WS1, 'ws-2')).toBe(false);
    expect(isWorkspaceAllowed(ONLY_WS1, null)).toBe(false);
  });

  it('hides a stored API key when ChatGPT login is forced, and shows it otherwise (SPEC §3.1)', () => {
    expect(isStoredAuthVisible(FORCE_CHATGPT, apiKey)).toBe(false);
    expect(isStoredAuthVisible(FORCE_API, apiKey)).toBe(true);
    expect(isStoredAuthVisible(NO_POLICY, apiKey)).toBe(true);
  });

  it('hides stored ChatGPT credentials when API login is forced', () => {
    expect(isStoredAuthVisible(FORCE_API, chatgpt('ws-1'))).toBe(false);
    expect(isStoredAuthVisible(FORCE_CHATGPT, chatgpt('ws-1'))).toBe(true);
  });

  it('hides stored ChatGPT credentials of a workspace outside the forced list', () => {
    expect(isStoredAuthVisible(ONLY_WS1, chatgpt('ws-1'))).toBe(true);
    expect(isStoredAuthVisible(ONLY_WS1, chatgpt('ws-2'))).toBe(false);
  });

  it('does not let a forced workspace list hide a stored API key', () => {
    expect(isStoredAuthVisible(ONLY_WS1, apiKey)).toBe(true);
  });
});

describe('the active mode and plan (SPEC §3.0, §3.1)', () => {
  it('is logged out without credentials', () => {
    expect(activeAuthMode(context({}))).toBeNull();
    expect(activePlanType(context({}))).toBeNull();
  });

  it('is apikey, without a plan, with a stored API key', () => {
    expect(activeAuthMode(context({ stored: apiKey }))).toBe('apikey');
    expect(activePlanType(context({ stored: apiKey }))).toBeNull();
  });

  it('is chatgpt with the id token’s plan with stored ChatGPT credentials', () => {
    expect(activeAuthMode(context({ stored: chatgpt('ws-1', 'pro') }))).toBe('chatgpt');
    expect(activePlanType(context({ stored: chatgpt('ws-1', 'pro') }))).toBe('pro');
  });

  it('reads an absent or unrecognised plan claim of stored credentials as unknown', () => {
    expect(activePlanType(context({ stored: chatgpt('ws-1', null) }))).toBe('unknown');
    expect(activePlanType(context({ stored: chatgpt('ws-1', 'platinum') }))).toBe('unknown');
  });

  it('lets host tokens win over stored credentials', () => {
    const both = context({ stored: chatgpt('ws-2', 'pro'), external });
    expect(activeAuthMode(both)).toBe('chatgptAuthTokens');
    expect(activePlanType(both)).toBe('team');
  });
});

describe('toFailure: what an effect rejected with', () => {
  it('keeps the kind and message of a failure object', () => {
    expect(toFailure({ kind: 'storageFailed', message: 'disk full' })).toStrictEqual({ kind: 'storageFailed', message: 'disk full' });
  });

  it('leaves the message out when it is empty, not a string or missing', () => {
    expect(toFailure({ kind: 'storageFailed', message: '' })).toStrictEqual({ kind: 'storageFailed' });
    expect(toFailure({ kind: 'storageFailed', message: 42 })).toStrictEqual({ kind: 'storageFailed' });
    expect(toFailure({ kind: 'storageFailed' })).toStrictEqual({ kind: 'storageFailed' });
  });

  it('turns an Error into the fallback kind with its message', () => {
    expect(toFailure(new Error('boom'))).toStrictEqual({ kind: 'internal', message: 'boom' });
    expect(toFailure(new Error('boom'), 'refreshFailed')).toStrictEqual({ kind: 'refreshFailed', message: 'boom' });
  });

  it('turns anything else into the fallback kind, leaving the message out', () => {
    expect(toFailure('a string')).toStrictEqual({ kind: 'internal' });
    expect(toFailure(null)).toStrictEqual({ kind: 'internal' });
    expect(toFailure({ kind: 7 })).toStrictEqual({ kind: 'internal' });
    expect(toFailure(undefined, 'backendFailed')).toStrictEqual({ kind: 'backendFailed' });
  });
});
