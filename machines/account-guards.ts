import {
  PLAN_TYPES,
  type AccountContext,
  type AccountView,
  type AuthFailure,
  type AuthMode,
  type AuthStatusView,
  type LoginFlow,
  type PlanType,
  type Policy,
  type StoredAuth,
} from './account-types.js';

/** Plain predicates and views over the context; the machine names them as guards. */

const KNOWN_PLANS: ReadonlySet<string> = new Set(PLAN_TYPES);

/** Unrecognised plan strings map to `unknown` (SPEC §3.0). */
export function toPlanType(value: string): PlanType {
  return KNOWN_PLANS.has(value) ? (value as PlanType) : 'unknown';
}

/** External-token plan: the param if given, else the token's claim, else `unknown` (SPEC §9.1). */
export function resolvePlanType(param: string | null, claim: string | null): PlanType {
  if (param !== null) return toPlanType(param);
  if (claim !== null) return toPlanType(claim);
  return 'unknown';
}

export function isLoginMethodAllowed(policy: Policy, method: 'api' | 'chatgpt'): boolean {
  return policy.forcedLoginMethod === null || policy.forcedLoginMethod === method;
}

export function isWorkspaceAllowed(policy: Policy, accountId: string | null): boolean {
  if (policy.forcedWorkspaceIds === null) return true;
  return accountId !== null && policy.forcedWorkspaceIds.includes(accountId);
}

/**
 * Whether stored credentials may be used under the policy. A forced method
 * hides credentials of the other kind (SPEC §3.1: the file is left untouched).
 */
export function isStoredAuthVisible(policy: Policy, stored: StoredAuth): boolean {
  if (stored.kind === 'apiKey') return isLoginMethodAllowed(policy, 'api');
  return isLoginMethodAllowed(policy, 'chatgpt') && isWorkspaceAllowed(policy, stored.accountId);
}

/** The mode the context implies; the machine's state must always agree with it. */
export function activeAuthMode(context: AccountContext): AuthMode | null {
  if (context.external) return 'chatgptAuthTokens';
  if (context.stored?.kind === 'apiKey') return 'apikey';
  if (context.stored?.kind === 'chatgpt') return 'chatgpt';
  return null;
}

export function activePlanType(context: AccountContext): PlanType | null {
  if (context.external) return context.external.planType;
  if (context.stored?.kind === 'chatgpt') return toPlanType(context.stored.claims.planType ?? 'unknown');
  return null;
}

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

export function viewAuthStatus(context: AccountContext, includeToken: boolean): AuthStatusView {
  const authMode = activeAuthMode(context);
  let token = null;
  if (context.external) token = context.external.accessToken;
  else if (context.stored?.kind === 'apiKey') token = context.stored.apiKey;
  else if (context.stored?.kind === 'chatgpt') token = context.stored.accessToken;
  return { authMode, token: includeToken ? token : null };
}

/** The `completed.error` text a cancelled login reports (SPEC §3.2, §3.3). */
export function loginEndedMessage(flow: LoginFlow, why: 'notCompleted' | 'cancelled'): string {
  const text = why === 'cancelled' ? 'Login cancelled' : 'Login was not completed';
  return flow === 'browser' ? `Login server error: ${text}` : text;
}

/** Why credentials of another workspace were refused (SPEC §9.3 wording). */
export function workspaceRestrictionMessage(policy: Policy, accountId: string | null): string {
  return `Login is restricted to workspace(s) ${(policy.forcedWorkspaceIds ?? []).join(', ')}, but current credentials belong to ${accountId ?? 'no workspace'}`;
}

/**
 * Turns whatever an effect rejected with into an `AuthFailure`. Effects throw
 * objects with a `kind`; anything else is an internal failure.
 */
export function toFailure(error: unknown, fallback: AuthFailure['kind'] = 'internal'): AuthFailure {
  if (typeof error === 'object' && error !== null && 'kind' in error && typeof error.kind === 'string') {
    const message = 'message' in error && typeof error.message === 'string' && error.message !== '' ? error.message : undefined;
    return { kind: error.kind as AuthFailure['kind'], ...(message === undefined ? {} : { message }) };
  }
  const message = error instanceof Error ? error.message : undefined;
  return { kind: fallback, ...(message === undefined ? {} : { message }) };
}
