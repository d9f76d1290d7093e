import type { AddCreditsType, AuthFailure, ModelProviders, SurfaceRequestEvent } from './account-types.js';
import { SURFACE_TEXT } from './wording.js';

/**
 * The rest of the account surface (SPEC-account-surface §12–§18), as the
 * machine sees it: which backend call each request asks the session for,
 * and the gateway-OAuth answers, which need no backend at all. Pure.
 */

/** The backend calls of §13–§17; the session runs them like rate limits (401 recovery included). */
export type SurfaceCall =
  | { kind: 'usage'; threadId: string | null }
  /** `accountId`/`userId` of the local session go into the notice (§14). */
  | { kind: 'securitySetup'; accountId: string; userId: string }
  | { kind: 'workspaceMessages' }
  | { kind: 'consume'; idempotencyKey: string; creditId: string | null }
  | { kind: 'nudge'; creditType: AddCreditsType };

/** Requests gated on ChatGPT auth, by event type, with the method `<what>` of their refusals names. */
export const CHATGPT_GATED = {
  'usage.read': 'usage',
  'workspaceMessages.read': 'workspaceMessages',
  'resetCredit.consume': 'consume',
  'addCreditsNudge.send': 'nudge',
} as const satisfies Partial<Record<SurfaceRequestEvent['type'], keyof typeof SURFACE_TEXT.what>>;

export type GatedEvent = Extract<SurfaceRequestEvent, { type: keyof typeof CHATGPT_GATED }>;

/** The call a gated request asks for. */
export function gatedCall(event: GatedEvent): SurfaceCall {
  switch (event.type) {
    case 'usage.read':
      return { kind: 'usage', threadId: event.threadId };
    case 'workspaceMessages.read':
      return { kind: 'workspaceMessages' };
    case 'resetCredit.consume':
      return { kind: 'consume', idempotencyKey: event.idempotencyKey, creditId: event.creditId };
    case 'addCreditsNudge.send':
      return { kind: 'nudge', creditType: event.creditType };
  }
}

/** `account/securitySetup/read` when there is nothing to ask (§14): it never fails. */
export const NO_SECURITY_NOTICE = { notice: null } as const;

/** The answer for the default OpenAI provider, as recorded (§18.2). */
const OPENAI = 'openai';

export type GatewayAnswer = { ok: true; result: unknown } | { ok: false; failure: AuthFailure };

/**
 * `account/gatewayOAuth/{read,login,cancel}` (§18). The gateway flow itself
 * belongs to model providers, which this server leaves out: without a
 * gateway provider the answers are the recorded ones; a provider that has a
 * `gateway_oauth` table gets `notImplemented` with `data.reason`. Cancel
 * always answers `{}` (no sign-in can be pending here, as recorded).
 */
export function gatewayAnswer(
  providers: ModelProviders,
  event: Extract<SurfaceRequestEvent, { type: `gatewayOAuth.${string}` }>,
): GatewayAnswer {
  if (event.type === 'gatewayOAuth.cancel') return { ok: true, result: {} };
  const id = event.modelProvider ?? providers.selected;
  const configured = providers.configured.find((p) => p.id === id);
  if (configured?.gatewayOAuth) {
    return { ok: false, failure: { kind: 'notImplemented', message: SURFACE_TEXT.gatewayNotImplemented(id) } };
  }
  if (!configured && id !== OPENAI) return { ok: false, failure: { kind: 'modelProviderNotConfigured', modelProvider: id } };
  if (event.type === 'gatewayOAuth.login') return { ok: false, failure: { kind: 'gatewayOAuthNotUsed' } };
  return {
    ok: true,
    result: {
      providerId: id,
      providerName: configured?.name ?? 'OpenAI',
      required: false,
      supportsDeviceAuth: false,
      status: null,
      error: null,
    },
  };
}
