import type { AccountView, AuthStatusView, RequestEvent, ReplyValue, SurfaceRequestEvent } from '../../machines/account-types.js';
import type { StateView } from '../../machines/account-views.js';
import type { StoreInfo } from '../effects/store-info.js';
import { Secret } from '../../machines/secret.js';
import { readClaims } from '../effects/jwt.js';
import { AuthError } from '../errors.js';
import { METHODS, type MethodName } from './methods.js';
import { parseLoginId, type LoginAccountParams } from './schemas.js';
import type { AccountState, GetAccountResult, GetAuthStatusResult, LoginAccountResult } from './results.js';
import { serdeMessage } from './serde.js';
import { parseUuid } from './uuid.js';

/**
 * The wire mapping, in one place: params → machine event, machine reply →
 * result (SPEC §3). The adapter only calls these.
 */

/** What the connection knows about the host (from `initialize`). */
export interface Session {
  optOut: ReadonlySet<string>;
  experimentalApi: boolean;
  /** `capabilities.stateNotifications`: send `account/state/changed`. */
  stateNotifications: boolean;
}

/** Params as parsed by each method's schema. */
export type ParamsOf<M extends MethodName> = import('zod/mini').infer<(typeof METHODS)[M]['schema']>;

/**
 * Parsed params made only of booleans and nulls (`{"refreshToken":false}`, `{}`: every pure
 * read's), by method and text. A burst of reads repeats a handful of such shapes, and zod was
 * over half the CPU of a cold burst of 1,000 pipelined reads (bench/, docs/bench.md). Bounded;
 * only successful parses are kept, frozen because they are shared.
 */
const flagParams = new Map<string, unknown>();
const FLAG_PARAMS_MAX = 64;

/** The memo key of params made of at most four boolean or null members, else `null`. */
function flagParamsKey(method: string, params: unknown): string | null {
  if (typeof params !== 'object' || params === null || Array.isArray(params)) return null;
  let members = 0;
  for (const key in params) {
    const value = (params as Record<string, unknown>)[key];
    if ((value !== null && typeof value !== 'boolean') || ++members > 4) return null;
  }
  return `${method}\n${JSON.stringify(params)}`;
}

/** Parses a method's params as the reference does (SPEC §1); throws `invalidParams` in serde's words. */
export function validateParams<M extends MethodName>(method: M, raw: unknown): ParamsOf<M> {
  const key = flagParamsKey(method, raw);
  if (key === null) return parseParams(method, raw);
  const known = flagParams.get(key);
  if (known !== undefined) return known as ParamsOf<M>;
  const parsed = Object.freeze(parseParams(method, raw));
  if (flagParams.size < FLAG_PARAMS_MAX) flagParams.set(key, parsed);
  return parsed as ParamsOf<M>;
}

function parseParams<M extends MethodName>(method: M, raw: unknown): ParamsOf<M> {
  const spec = METHODS[method];
  let params = raw === null ? undefined : raw;
  if (params === undefined) {
    if (spec.params === 'required') throw new AuthError('invalidParams', 'Invalid request: missing field `params`');
    params = {};
  }
  // serde reads a struct from a sequence positionally (`[]` is an empty struct).
  if (Array.isArray(params) && 'shape' in spec.schema) {
    const keys = Object.keys((spec.schema as unknown as { shape: object }).shape);
    params = Object.fromEntries(keys.map((k, i) => [k, (params as unknown[])[i]]).filter(([, v]) => v !== undefined));
  }
  const result = spec.schema.safeParse(params);
  if (result.success) return result.data as ParamsOf<M>;
  // Parsed again only to word the error: `reportInput` costs ~20× a plain parse.
  const worded = spec.schema.safeParse(params, { reportInput: true });
  throw new AuthError('invalidParams', `Invalid request: ${serdeMessage(worded.error ?? result.error)}`);
}

/** `account/read` result (SPEC §3.1). */
export function accountResult({ authMode, email, planType, userId, routing }: AccountView): GetAccountResult {
  return {
    account:
      authMode === null
        ? null
        : authMode === 'apikey'
          ? { type: 'apiKey' as const }
          : { type: 'chatgpt' as const, email, planType, workspaceName: routing?.workspaceName ?? null },
    userId,
    requiresOpenaiAuth: true,
    workspaceRouting: routing
      ? {
          chatgptAccountId: routing.accountId,
          backendOrigin: routing.backendOrigin,
          accountRoutingOverride: routing.accountRoutingOverride,
        }
      : null,
  };
}

/** `getAuthStatus` result (SPEC §3.6). */
export function authStatusResult(status: AuthStatusView): GetAuthStatusResult {
  return { authMethod: status.authMode, authToken: status.token?.reveal() ?? null, requiresOpenaiAuth: true };
}

/** Wire shapes of the machine's replies (SPEC §3). */
export function toWireResult(value: ReplyValue): unknown {
  switch (value.kind) {
    case 'account':
      return accountResult(value.account);
    case 'authStatus':
      return authStatusResult(value.status);
    case 'login':
      return { type: value.type } satisfies LoginAccountResult;
    case 'loginStarted': {
      const { details } = value;
      // The auth URL (it holds the login's `state`) and the user code stay `Secret` until here.
      return (
        details.flow === 'browser'
          ? { type: 'chatgpt', loginId: value.loginId, authUrl: details.authUrl.reveal() }
          : {
              type: 'chatgptDeviceCode',
              loginId: value.loginId,
              verificationUrl: details.verificationUrl,
              userCode: details.userCode.reveal(),
            }
      ) satisfies LoginAccountResult;
    }
    case 'cancel':
      return { status: value.status };
    case 'empty':
      return {};
    case 'backend':
      return value.result;
  }
}

/** What `account/state/read` adds to the snapshot's view: times, the last error, the store (ms since the epoch). */
export interface StateExtras {
  login: { loginId: string; startedAt: number | null; deadline: number | null } | null;
  lastError: { source: 'request' | 'login' | 'refresh' | 'storage'; code: number | null; message: string; reason: string; recovery: string; at: number } | null;
  store: StoreInfo | null;
}

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

/**
 * `account/state/read` result and `account/state/changed` params: an
 * allowlist, field by field, of what holds no secret (docs/state-api.md).
 */
export function accountStateResult(view: StateView, extras: StateExtras): AccountState {
  const pending = view.pendingLogin;
  const times = pending && extras.login?.loginId === pending.loginId ? extras.login : null;
  const error = extras.lastError;
  return {
    value: view.value,
    machines: { session: view.machines.session, loginAttempt: view.machines.loginAttempt },
    authMode: view.authMode,
    busy: view.busy,
    pendingLogin: pending && {
      loginId: pending.loginId,
      flow: pending.flow,
      step: pending.step,
      startedAt: iso(times?.startedAt ?? null),
      deadline: iso(times?.deadline ?? null),
    },
    refreshing: view.refreshing,
    lastError: error && {
      source: error.source,
      code: error.code,
      message: error.message,
      data: { reason: error.reason, recovery: error.recovery },
      at: new Date(error.at).toISOString(),
    },
    policy: {
      forcedLoginMethod: view.policy.forcedLoginMethod,
      forcedWorkspaceIds: view.policy.forcedWorkspaceIds === null ? null : [...view.policy.forcedWorkspaceIds],
    },
    allowedLoginMethods: [...view.allowedLoginMethods],
    credentialStore: extras.store && {
      configured: extras.store.configured,
      backend: extras.store.backend,
      reason: extras.store.reason,
      location: extras.store.location,
      problem: extras.store.problem,
    },
  };
}

/** Request → machine event. Mode logic stays in the machine; this only translates. */
export function toEvent(
  method: Exclude<MethodName, 'initialize' | 'account/state/read'>,
  params: unknown,
  requestId: string,
  session: Session,
  newLoginId: () => string,
): RequestEvent {
  switch (method) {
    case 'account/read':
      return { type: 'account.read', requestId, refreshToken: (params as ParamsOf<'account/read'>).refreshToken ?? false };
    case 'getAuthStatus':
      return { type: 'authStatus.read', requestId, includeToken: (params as ParamsOf<'getAuthStatus'>).includeToken ?? false };
    case 'account/logout':
      return { type: 'logout', requestId };
    case 'account/rateLimits/read': {
      const { supportsLunaReserve, excludeResetCreditDetails } = params as ParamsOf<'account/rateLimits/read'>;
      return {
        type: 'rateLimits.read',
        requestId,
        params: {
          ...(supportsLunaReserve === undefined ? {} : { supportsLunaReserve }),
          ...(excludeResetCreditDetails === undefined ? {} : { excludeResetCreditDetails }),
        },
      };
    }
    case 'account/login/cancel': {
      const { loginId } = params as ParamsOf<'account/login/cancel'>;
      const normalized = parseLoginId(loginId);
      if (normalized === null) throw new AuthError('invalidLoginId', `invalid login id: ${loginId}`);
      return { type: 'login.cancel', requestId, loginId: normalized };
    }
    case 'account/login/complete': {
      const { loginId, redirectUrl } = params as ParamsOf<'account/login/complete'>;
      const normalized = parseLoginId(loginId);
      if (normalized === null) throw new AuthError('invalidLoginId', `invalid login id: ${loginId}`);
      return { type: 'login.complete', requestId, loginId: normalized, redirectUrl: new Secret(redirectUrl) };
    }
    case 'account/usage/read':
    case 'account/securitySetup/read':
    case 'account/workspaceMessages/read':
    case 'account/rateLimitResetCredit/consume':
    case 'account/sendAddCreditsNudgeEmail':
    case 'account/gatewayOAuth/read':
    case 'account/gatewayOAuth/login':
    case 'account/gatewayOAuth/cancel':
      return toSurfaceEvent(method, params, requestId);
    case 'account/login/start': {
      const login = params as LoginAccountParams;
      switch (login.type) {
        case 'apiKey':
          return { type: 'login.apiKey', requestId, apiKey: new Secret(login.apiKey) };
        case 'chatgpt':
          return { type: 'login.chatgpt', requestId, flow: 'browser', loginId: newLoginId() };
        case 'chatgptDeviceCode':
          return { type: 'login.chatgpt', requestId, flow: 'device', loginId: newLoginId() };
        case 'chatgptAuthTokens':
          return {
            type: 'login.externalTokens',
            requestId,
            experimentalApi: session.experimentalApi,
            accessToken: new Secret(login.accessToken),
            accountId: login.chatgptAccountId,
            planType: login.chatgptPlanType ?? null,
            claims: readClaims(login.accessToken),
          };
      }
    }
  }
}

type SurfaceMethodName = Extract<
  MethodName,
  `account/${'usage' | 'securitySetup' | 'workspaceMessages' | 'rateLimitResetCredit' | 'sendAddCreditsNudgeEmail' | 'gatewayOAuth'}${string}`
>;

/**
 * The rest of the account surface (SPEC-account-surface §13–§18). Parameter
 * checks that come before the auth gate (§12.1) throw here, so they answer
 * whatever the credentials.
 */
function toSurfaceEvent(method: SurfaceMethodName, params: unknown, requestId: string): SurfaceRequestEvent {
  switch (method) {
    case 'account/usage/read': {
      const { threadId } = params as ParamsOf<'account/usage/read'>;
      if (threadId == null) return { type: 'usage.read', requestId, threadId: null };
      const parsed = parseUuid(threadId);
      if (!parsed.ok) throw new AuthError('invalidThreadId', parsed.why);
      return { type: 'usage.read', requestId, threadId: parsed.uuid };
    }
    case 'account/securitySetup/read':
      return { type: 'securitySetup.read', requestId };
    case 'account/workspaceMessages/read':
      return { type: 'workspaceMessages.read', requestId };
    case 'account/rateLimitResetCredit/consume': {
      const { idempotencyKey, creditId } = params as ParamsOf<'account/rateLimitResetCredit/consume'>;
      if (idempotencyKey === '') throw new AuthError('emptyIdempotencyKey');
      if (creditId === '') throw new AuthError('emptyCreditId');
      return { type: 'resetCredit.consume', requestId, idempotencyKey, creditId: creditId ?? null };
    }
    case 'account/sendAddCreditsNudgeEmail':
      return { type: 'addCreditsNudge.send', requestId, creditType: (params as ParamsOf<'account/sendAddCreditsNudgeEmail'>).creditType };
    case 'account/gatewayOAuth/read':
      return { type: 'gatewayOAuth.read', requestId, modelProvider: (params as ParamsOf<'account/gatewayOAuth/read'>).modelProvider ?? null };
    case 'account/gatewayOAuth/login': {
      const { modelProvider, deviceAuth } = params as ParamsOf<'account/gatewayOAuth/login'>;
      return { type: 'gatewayOAuth.login', requestId, modelProvider: modelProvider ?? null, deviceAuth: deviceAuth ?? false };
    }
    case 'account/gatewayOAuth/cancel':
      return { type: 'gatewayOAuth.cancel', requestId };
  }
}
