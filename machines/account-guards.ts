import {
  PLAN_TYPES,
  type AccountContext,
  type AuthFailure,
  type AuthMode,
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

/** The stored credentials the policy lets this process use: `stored` itself, or `null` when hidden. */
export function visibleStoredAuth(policy: Policy, stored: StoredAuth | null): StoredAuth | null {
  return stored !== null && isStoredAuthVisible(policy, stored) ? stored : null;
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
