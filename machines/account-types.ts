import type { LoginAttemptReport, LoginReadyDetails } from './login-attempt-types.js';
import type { Secret } from './secret.js';

/** Plan types the reference knows (SPEC §3.0); anything else reads as `unknown`. */
export const PLAN_TYPES = [
  'free', 'go', 'plus', 'pro', 'prolite', 'promax', 'team',
  'self_serve_business_prolite', 'self_serve_business_usage_based', 'business',
  'ent26', 'enterprise_cbp_automation', 'enterprise_cbp_usage_based', 'enterprise',
  'edu', 'edu_plus', 'edu_pro', 'sci', 'sci_plus', 'unknown',
] as const;
export type PlanType = (typeof PLAN_TYPES)[number];

/** Wire names of the active credential kind (SPEC §3.0: lower-case `k` in `apikey`). */
export type AuthMode = 'apikey' | 'chatgpt' | 'chatgptAuthTokens';

export type ForcedLoginMethod = 'chatgpt' | 'api';

/** Login policy from config.toml; fixed for the life of the process. */
export interface Policy {
  forcedLoginMethod: ForcedLoginMethod | null;
  /** `forced_chatgpt_workspace_id`, normalised to a list; `null` = no restriction. */
  forcedWorkspaceIds: readonly string[] | null;
}

/** Who the host says it is (from `initialize`); used for User-Agent and OAuth originator. */
export interface ClientIdentity {
  originator: string;
  userAgent: string;
}

/** Claims read from a JWT without verifying it (SPEC §3.0). */
export interface TokenClaims {
  email: string | null;
  userId: string | null;
  accountId: string | null;
  planType: string | null;
}

export interface StoredApiKey {
  kind: 'apiKey';
  apiKey: Secret;
}

export interface StoredChatgpt {
  kind: 'chatgpt';
  idToken: Secret;
  accessToken: Secret;
  refreshToken: Secret;
  /** `tokens.account_id` (the id token's `chatgpt_account_id`). */
  accountId: string | null;
  /** The exchanged API key, kept as the reference keeps it. */
  apiKey: Secret | null;
  /** `tokens.oauth_provenance` (SPEC §5), kept so a rewrite preserves it; omitted when absent. */
  oauthProvenance?: { issuer: string; clientId: string } | null;
  /** `tokens.login_owner_id` (SPEC §5), kept likewise. */
  loginOwnerId?: string | null;
  /** Claims of the id token. */
  claims: TokenClaims;
  lastRefresh: string | null;
}

/** Credentials persisted in `auth.json` (or the ephemeral store). */
export type StoredAuth = StoredApiKey | StoredChatgpt;

/** Host-supplied tokens (`chatgptAuthTokens`): memory only, never persisted. */
export interface ExternalTokens {
  accessToken: Secret;
  accountId: string;
  planType: PlanType;
  email: string | null;
  userId: string | null;
}

export type RoutingOverride = 'NO_CONSTRAINT' | 'us' | 'us_cr';

/** Result of workspace routing discovery (SPEC §9.2), cached per credentials. */
export interface WorkspaceRouting {
  accountId: string;
  backendOrigin: string;
  accountRoutingOverride: RoutingOverride;
  workspaceName: string | null;
}

export type LoginFlow = 'browser' | 'device';

export interface PendingLogin {
  loginId: string;
  flow: LoginFlow;
}

/**
 * Why a request was refused or failed. `src/rpc/errors.ts` is the only place
 * that turns a kind into a wire code, message and `data`.
 */
export type FailureKind =
  | 'apiKeyLoginDisabled'
  | 'chatgptLoginDisabled'
  | 'externalAuthDisabled'
  | 'externalAuthActive'
  | 'experimentalApiRequired'
  | 'workspaceNotAllowed'
  | 'invalidToken'
  | 'authFileCorrupt'
  | 'storageFailed'
  /** The OS keyring (Secret Service) cannot be reached, or did not answer in time. */
  | 'keyringUnavailable'
  /** The keyring collection is locked and this process cannot unlock it. */
  | 'keyringLocked'
  | 'discoveryFailed'
  | 'workspaceMissing'
  | 'accountIdMissing'
  | 'rateLimitsNeedAuth'
  | 'rateLimitsNeedChatgpt'
  | 'backendFailed'
  | 'backendUnauthorized'
  | 'backendTimeout'
  | 'notImplemented'
  | 'internal'
  // ChatGPT sign-in (docs/chatgpt-login.md)
  | 'loginServerFailed'
  | 'deviceCodeFailed'
  | 'deviceCodeDisabled'
  | 'loginFailed'
  | 'loginNotFound'
  | 'loginNotWaiting'
  | 'pasteNotSupported'
  | 'redirectStateMismatch'
  | 'invalidRedirectUrl'
  | 'redirectMissingCode'
  // Managed refresh (SPEC §8.1): a 401 by its code, or a transient failure
  | 'refreshTokenExpired'
  | 'refreshTokenReused'
  | 'refreshTokenInvalidated'
  | 'refreshTokenRejected'
  | 'refreshFailed'
  // The 401 loop in host-token mode (SPEC §9.3)
  | 'hostRefreshFailed'
  | 'hostRefreshTimeout'
  | 'refreshWorkspaceNotAllowed'
  // The rest of the account surface (SPEC-account-surface §12–§18)
  /** Logged out: `codex account authentication required <what>` (the message is the full text). */
  | 'accountAuthRequired'
  /** An API key is active: `chatgpt authentication required <what>`. */
  | 'chatgptAuthRequired'
  /** `modelProvider` names no configured provider (§18.2); `data` says which. */
  | 'modelProviderNotConfigured'
  /** `account/gatewayOAuth/login` for a provider without gateway OAuth (§18.3). */
  | 'gatewayOAuthNotUsed';

export interface AuthFailure {
  kind: FailureKind;
  /** Human text for kinds whose message is not fixed (I/O, network). Never holds a secret. */
  message?: string;
  /** For `workspaceNotAllowed`. */
  allowed?: readonly string[];
  received?: string;
  /** For `modelProviderNotConfigured`: the provider asked for. */
  modelProvider?: string;
}

/** An external-tokens login or a finished browser/device login waits for discovery to announce itself. */
export type Announcement =
  | { kind: 'externalLogin' }
  | { kind: 'chatgptLogin'; loginId: string }
  /** Stored ChatGPT credentials found at start: the first discovery sends `account/updated` (SPEC §3.1). */
  | { kind: 'storedCredentials' };

export interface AccountContext {
  policy: Policy;
  client: ClientIdentity | null;
  /** Visible persisted credentials; `null` when none or hidden by policy. */
  stored: StoredAuth | null;
  external: ExternalTokens | null;
  /** The routing the session child discovered for the active ChatGPT credentials. */
  routing: WorkspaceRouting | null;
  pending: PendingLogin | null;
  /** Why `auth.json` could not be loaded, if it could not. The file is left alone. */
  storageIssue: AuthFailure | null;
  /** The request the credentials region is busy with (saving, clearing); its reply carries this id. */
  busyWith: string | null;
  /** The request that started the pending login, until the attempt is ready (or failed to start). */
  startingRequest: string | null;
  /** Reads waiting for routing discovery, answered together when it ends (one discovery for all). */
  readWaiters: string[];
  /** `account/login/complete` requests the attempt has not answered yet. */
  pasteWaiters: string[];
  /** Requests whose backend call the session runs (rate limits), answered when it reports. */
  backendWaiters: string[];
  /** What a waiting request answers instead of failing (`account/securitySetup/read` never fails, §14). */
  backendFallbacks: Record<string, unknown>;
  /** The model providers of config.toml, for the gateway-OAuth answers (§18). */
  modelProviders: ModelProviders;
  /** State-changing requests that arrived while the credentials were busy; replayed in arrival order. */
  deferred: RequestEvent[];
  announcement: Announcement | null;
  /** Deadline for the host's answer to `account/chatgptAuthTokens/refresh` (SPEC §9.3). */
  hostRefreshTimeoutMs: number;
  loginTimeoutMs: number;
}

export interface AccountInput {
  policy: Policy;
  /** Deadline for the host's answer to `account/chatgptAuthTokens/refresh` (SPEC §9.3). */
  hostRefreshTimeoutMs?: number;
  /** How long a browser or device login may wait for the user (default 10 minutes). */
  loginTimeoutMs?: number;
  /** The model providers of config.toml (default: only OpenAI). */
  modelProviders?: ModelProviders;
}

/** A `[model_providers.<id>]` table of config.toml, as far as the gateway-OAuth answers need it (§18.1). */
export interface ModelProviderInfo {
  id: string;
  name: string;
  /** It has a `gateway_oauth` table. */
  gatewayOAuth: boolean;
}

export interface ModelProviders {
  /** `model_provider` (default `openai`). */
  selected: string;
  configured: readonly ModelProviderInfo[];
}

/** Credit types of `account/sendAddCreditsNudgeEmail` (§17). */
export type AddCreditsType = 'credits' | 'usage_limit';

/** Events the adapter sends for JSON-RPC requests; each is answered by exactly one `reply`. */
export type RequestEvent =
  | { type: 'account.read'; requestId: string; refreshToken: boolean }
  | { type: 'authStatus.read'; requestId: string; includeToken: boolean }
  | { type: 'login.apiKey'; requestId: string; apiKey: Secret }
  | { type: 'login.chatgpt'; requestId: string; flow: LoginFlow; loginId: string }
  | {
      type: 'login.externalTokens';
      requestId: string;
      experimentalApi: boolean;
      accessToken: Secret;
      accountId: string;
      planType: string | null;
      /** `null` when the access token is not a decodable JWT. */
      claims: TokenClaims | null;
    }
  | { type: 'login.cancel'; requestId: string; loginId: string }
  /** `account/login/complete`: the URL the browser ended on, pasted by the user (issue 7). */
  | { type: 'login.complete'; requestId: string; loginId: string; redirectUrl: Secret }
  | { type: 'logout'; requestId: string }
  | { type: 'rateLimits.read'; requestId: string; params: { supportsLunaReserve?: boolean; excludeResetCreditDetails?: boolean } }
  | SurfaceRequestEvent;

/** The ChatGPT-backend methods of SPEC-account-surface §13–§17 and the gateway-OAuth answers (§18). */
export type SurfaceRequestEvent =
  /** `threadId` is already the canonical (lower-case hyphenated) UUID. */
  | { type: 'usage.read'; requestId: string; threadId: string | null }
  | { type: 'securitySetup.read'; requestId: string }
  | { type: 'workspaceMessages.read'; requestId: string }
  | { type: 'resetCredit.consume'; requestId: string; idempotencyKey: string; creditId: string | null }
  | { type: 'addCreditsNudge.send'; requestId: string; creditType: AddCreditsType }
  | { type: 'gatewayOAuth.read'; requestId: string; modelProvider: string | null }
  | { type: 'gatewayOAuth.login'; requestId: string; modelProvider: string | null; deviceAuth: boolean }
  | { type: 'gatewayOAuth.cancel'; requestId: string };

/** What the session child reports to the root (`sendParent`). */
export type SessionEvent =
  | { type: 'session.routed'; routing: WorkspaceRouting }
  | { type: 'session.unrouted'; failure: AuthFailure }
  | { type: 'session.refreshed'; tokens: RefreshedTokens }
  | { type: 'session.refreshFailed'; failure: AuthFailure }
  /** A backend call a request asked for ended (result in wire shape). */
  | { type: 'session.answered'; requestId: string; ok: true; result: unknown }
  | { type: 'session.answered'; requestId: string; ok: false; failure: AuthFailure };


/** New credentials from a refresh: stored ones (managed) or the host's (external). */
export type RefreshedTokens =
  | { kind: 'managed'; stored: StoredChatgpt }
  | { kind: 'external'; accessToken: Secret; accountId: string; planType: string | null; claims: TokenClaims | null };

/** Another process (Codex, another server) changed the stored credentials (issue 8). */
export type StoreEvent = { type: 'credentials.reloaded'; auth: StoredAuth | null } | { type: 'credentials.unreadable'; failure: AuthFailure };

/** Events one region raises for the other. Never sent from outside. */
export type InternalEvent =
  /** A finished login attempt stored new credentials: take the mode they imply. */
  | { type: 'credentials.changed' }
  /** Another request ended the pending login: stop its attempt. */
  | { type: 'attempt.abandon' };

export type AccountEvent =
  | RequestEvent
  | SessionEvent
  | LoginAttemptReport
  | InternalEvent
  | StoreEvent
  | { type: 'client.identify'; client: ClientIdentity; hostRefreshTimeoutMs?: number };

export type AccountView = {
  authMode: AuthMode | null;
  email: string | null;
  planType: PlanType | null;
  userId: string | null;
  routing: WorkspaceRouting | null;
};

export type AuthStatusView = {
  authMode: AuthMode | null;
  token: Secret | null;
};

export type ReplyValue =
  | { kind: 'account'; account: AccountView }
  | { kind: 'authStatus'; status: AuthStatusView }
  | { kind: 'login'; type: 'apiKey' | 'chatgptAuthTokens' }
  | { kind: 'loginStarted'; loginId: string; details: LoginReadyDetails }
  | { kind: 'cancel'; status: 'canceled' | 'notFound' }
  | { kind: 'empty' }
  /** A backend call's result (or an answer the machine computed), already in wire shape. */
  | { kind: 'backend'; result: unknown };

/** What the machine emits; the adapter turns these into responses and notifications. */
export type AccountEmitted =
  | { type: 'reply'; requestId: string; ok: true; value: ReplyValue }
  | { type: 'reply'; requestId: string; ok: false; failure: AuthFailure }
  | { type: 'login.completed'; loginId: string | null; success: boolean; error: string | null }
  | { type: 'account.updated'; authMode: AuthMode | null; planType: PlanType | null };


