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

/** A login method as `account/login/start` names it (its `type`). */
export type LoginMethod = 'apiKey' | 'chatgpt' | 'chatgptDeviceCode' | 'chatgptAuthTokens';

/** A state value as XState gives it: a leaf name, or an object of regions and compound states. */
export type StateValueView = string | { [key: string]: StateValueView };

/**
 * The statechart as a host may see it (`account/state/read`), from one
 * snapshot. Built field by field from fields that hold no secret; the
 * adapter adds what a snapshot does not hold (times, the last error, the
 * credential store).
 */
export interface StateView {
  /** The root's value: `{credentials: …, login: …}`. */
  value: StateValueView;
  /** The running child machines' values (`null` when not running). */
  machines: { session: StateValueView | null; loginAttempt: StateValueView | null };
  authMode: ReturnType<typeof activeAuthMode>;
  /** Loading, saving or clearing credentials: state-changing requests wait. */
  busy: boolean;
  /** A browser or device sign-in in progress: `starting` until `account/login/start` is answered, then `waiting`. */
  pendingLogin: { loginId: string; flow: LoginFlow; step: 'starting' | 'waiting' } | null;
  /** The session child is refreshing tokens (managed, or asking the host). */
  refreshing: boolean;
  /** Why `auth.json` could not be read, while that is what `account/read` answers. */
  storageIssue: AuthFailure | null;
  /** The session's last refresh failure, as the session child keeps it (`null` when none, or no session). */
  refreshFailure: AuthFailure | null;
  policy: Policy;
  allowedLoginMethods: LoginMethod[];
}

/**
 * Which login methods `account/login/start` accepts right now: what the
 * policy allows, minus what the state refuses (host tokens are active: only
 * new host tokens), minus `chatgptAuthTokens` unless the host opted into the
 * experimental API (`initialize` `capabilities.experimentalApi`).
 */
export function allowedLoginMethods(context: AccountContext, experimentalApi = true): LoginMethod[] {
  const methods: LoginMethod[] = [];
  const external = context.external !== null;
  if (!external && isLoginMethodAllowed(context.policy, 'api')) methods.push('apiKey');
  if (!external && isLoginMethodAllowed(context.policy, 'chatgpt')) methods.push('chatgpt', 'chatgptDeviceCode');
  if (experimentalApi && isLoginMethodAllowed(context.policy, 'chatgpt')) methods.push('chatgptAuthTokens');
  return methods;
}

interface ChildShape {
  getSnapshot(): { value: unknown; status: string; context?: { lastFailure?: AuthFailure | null } };
}

/** A running child machine's snapshot, or `null`. */
function child(s: AccountSnapshot, id: 'session' | 'attempt') {
  const ref = (s.children as Record<string, ChildShape | undefined>)[id];
  const snapshot = ref?.getSnapshot();
  return snapshot && snapshot.status === 'active' ? snapshot : null;
}

/** `account/state/read` from a snapshot; `experimentalApi` is the host's opt-in. */
export function viewState(s: AccountSnapshot, options: { experimentalApi: boolean }): StateView {
  const { context } = s;
  const session = child(s, 'session');
  const attempt = child(s, 'attempt');
  const pending = context.pending;
  return {
    value: s.value as StateValueView,
    machines: {
      session: (session?.value as StateValueView | undefined) ?? null,
      loginAttempt: (attempt?.value as StateValueView | undefined) ?? null,
    },
    authMode: activeAuthMode(context),
    busy: context.busyWith !== null,
    pendingLogin:
      pending === null
        ? null
        : {
            loginId: pending.loginId,
            flow: pending.flow,
            step: s.matches({ login: { chatgptPending: 'waiting' } }) ? 'waiting' : 'starting',
          },
    refreshing: typeof session?.value === 'object' && session.value !== null && 'refreshing' in session.value,
    storageIssue: context.storageIssue !== null && activeAuthMode(context) === null ? context.storageIssue : null,
    refreshFailure: session?.context?.lastFailure ?? null,
    policy: context.policy,
    allowedLoginMethods: allowedLoginMethods(context, options.experimentalApi),
  };
}
