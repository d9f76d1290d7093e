import type { SnapshotFrom } from 'xstate';
import type { AccountMachine } from './account-machine.js';
import type { AccountContext, AccountView, AuthFailure, AuthStatusView, LoginFlow, Policy } from './account-types.js';
import { activeAuthMode, activePlanType, isLoginMethodAllowed } from './account-guards.js';

/**
 * Pure views over the machine: what reads answer. The machine stays the only
 * writer of state; the adapter answers `account/read` and `getAuthStatus`
 * straight from a snapshot through these (no event, no macrostep) whenever
 * the answer is already known, and sends an event only when the machine has
 * work to do first (loading, routing discovery).
 */

export type AccountSnapshot = SnapshotFrom<AccountMachine>;

export type ViewResult<T> = { ok: true; value: T } | { ok: false; failure: AuthFailure };

/** The account as `account/read` shows it (SPEC §3.1). */
export function viewAccount(context: AccountContext): AccountView {
  const authMode = activeAuthMode(context);
  const identity = context.external ?? (context.stored?.kind === 'chatgpt' ? context.stored.claims : null);
  return {
    authMode,
    email: identity?.email ?? null,
    planType: activePlanType(context),
    userId: identity?.userId ?? null,
    routing: authMode === 'chatgpt' || authMode === 'chatgptAuthTokens' ? context.routing : null,
  };
}

/** `getAuthStatus` (SPEC §3.6). */
export function viewAuthStatus(context: AccountContext, includeToken: boolean): AuthStatusView {
  const authMode = activeAuthMode(context);
  let token = null;
  if (context.external) token = context.external.accessToken;
  else if (context.stored?.kind === 'apiKey') token = context.stored.apiKey;
  else if (context.stored?.kind === 'chatgpt') token = context.stored.accessToken;
  return { authMode, token: includeToken ? token : null };
}


const isLoading = (s: AccountSnapshot) => s.context.busyWith === 'load';

/** Whether the ChatGPT session must discover routing before a read can be answered. */
function needsDiscovery(s: AccountSnapshot): boolean {
  return s.matches({ credentials: 'chatgptSession' }) && s.context.routing === null;
}

/** `account/read` from the snapshot, or `null` when the machine must handle it (an event). */
export function readAccount(s: AccountSnapshot, refreshToken = false): ViewResult<AccountView> | null {
  if (isLoading(s) || needsDiscovery(s)) return null;
  // A managed refresh is work for the machine; other modes ignore the flag (SPEC §3.1).
  if (refreshToken && s.matches({ credentials: { chatgptSession: 'chatgpt' } })) return null;
  const { context } = s;
  if (context.storageIssue !== null && activeAuthMode(context) === null) return { ok: false, failure: context.storageIssue };
  return { ok: true, value: viewAccount(context) };
}

/** `getAuthStatus` from the snapshot, or `null` while credentials are still loading. */
export function readAuthStatus(s: AccountSnapshot, includeToken: boolean): ViewResult<AuthStatusView> | null {
  if (isLoading(s)) return null;
  return { ok: true, value: viewAuthStatus(s.context, includeToken) };
}

/** The state a host may show (`account/state/read`); secrets are never part of it. */
export interface StateView {
  value: AccountSnapshot['value'];
  authMode: ReturnType<typeof activeAuthMode>;
  pendingLogin: { loginId: string; flow: LoginFlow } | null;
  refreshing: boolean;
  busy: boolean;
  policy: Policy;
  allowedLoginMethods: Array<'apiKey' | 'chatgpt' | 'chatgptDeviceCode' | 'chatgptAuthTokens'>;
}

/** Which login methods the policy and the state allow right now. */
export function allowedLoginMethods(context: AccountContext): StateView['allowedLoginMethods'] {
  const methods: StateView['allowedLoginMethods'] = [];
  const external = context.external !== null;
  if (!external && isLoginMethodAllowed(context.policy, 'api')) methods.push('apiKey');
  if (!external && isLoginMethodAllowed(context.policy, 'chatgpt')) methods.push('chatgpt', 'chatgptDeviceCode');
  if (isLoginMethodAllowed(context.policy, 'chatgpt')) methods.push('chatgptAuthTokens');
  return methods;
}

export function viewState(s: AccountSnapshot): StateView {
  const session = s.children.session as { getSnapshot(): { matches(v: string): boolean } } | undefined;
  return {
    value: s.value,
    authMode: activeAuthMode(s.context),
    pendingLogin: s.context.pending,
    refreshing: session?.getSnapshot().matches('refreshing') ?? false,
    busy: s.context.busyWith !== null,
    policy: s.context.policy,
    allowedLoginMethods: allowedLoginMethods(s.context),
  };
}
