import type { AccountEvent } from '../../machines/account-types.js';
import { hostToken } from '../helpers/surface.js';
import { eventually, type Outcome, type Replay } from './replay.js';

/**
 * What the real world does for each event of the root chart (the account
 * machine), in a generated path. Requests go to stdin; the ends of effects
 * release what the replay holds; the children's reports are caused through
 * the children (a held discovery, refresh, call or device code released with
 * the outcome the event carries). `ahead` is the rest of the path, for
 * causes that must be set up before the step that meets them.
 */
export type Driver<E> = (r: Replay, event: E, ahead: E[], before?: { context: any; value: unknown }) => Promise<void> | void;

type Of<T extends AccountEvent['type']> = Extract<AccountEvent, { type: T }>;
const output = (e: AccountEvent) => (e as unknown as { output: any }).output;

const PASTED = 'http://127.0.0.1:1/auth/callback?code=c&state=s';

/** The refresh in flight (the issuer's or the host's) succeeds or fails. */
const releaseRefresh = (r: Replay, ok: boolean) => r.answerRefresh(ok ? { accountId: 'ws-1' } : 'error');

const refreshInFlight = (r: Replay) => r.isHeld('refresh') || r.hostAsks().length > 0;

/** A discovery held at the backend, caused by a read if none runs. */
async function discovery(r: Replay): Promise<void> {
  if (await r.heldSoon('discover', 200)) return;
  r.request('account/read', { refreshToken: false });
  if (await r.heldSoon('discover', 1_000)) return;
  // The routing is known: only a refresh runs discovery again.
  r.request('account/read', { refreshToken: true });
  await releaseRefresh(r, true);
  if (!(await r.heldSoon('discover'))) throw new Error('no discovery ran');
}

/** Answers the held backend requests, and those that follow them (rate limits fetch two). */
export async function answerCalls(r: Replay, ok: Outcome): Promise<void> {
  do {
    while (r.isHeld('call')) r.release('call', ok);
  } while (await r.heldSoon('call', 300));
}

/** The device-code login's token exchanges, answered with `ok`; then its save is let through. */
async function exchange(r: Replay, ok: boolean): Promise<void> {
  if (!(await r.heldSoon('token', 5_000))) throw new Error('the code was never exchanged');
  r.release('token', ok);
  if (!ok) return;
  // The API key exchange (same endpoint, a form) follows the code's.
  if (await r.heldSoon('token', 2_000)) r.release('token', true);
  await r.releaseWrite(true);
}

/** The login id the events' LOGIN_ID stands for: the pending login's (the chart has one), or one the server never issued. */
async function loginIdFor(r: Replay, before: { context: any } | undefined): Promise<string> {
  if (!before?.context.pending) return r.unknownLoginId();
  if (!(await eventually(() => r.pendingLoginId() !== null, 5_000))) throw new Error('the pending login never said its id');
  return r.pendingLoginId()!;
}

export const ACCOUNT_DRIVERS: Record<string, Driver<AccountEvent>> = {
  'client.identify': async (r, _e, ahead) => {
    const experimentalApi = !ahead.some((e) => e.type === 'login.externalTokens' && !e.experimentalApi);
    await r.s.initialize({ capabilities: { experimentalApi } });
  },
  'account.read': (r, e) => void r.request('account/read', { refreshToken: (e as Of<'account.read'>).refreshToken }),
  'authStatus.read': (r, e) => void r.request('getAuthStatus', { includeToken: (e as Of<'authStatus.read'>).includeToken }),
  'rateLimits.read': (r) => void r.request('account/rateLimits/read'),
  'login.apiKey': async (r) => {
    await r.holdWrites();
    r.request('account/login/start', { type: 'apiKey', apiKey: `sk-replay-${Date.now()}` });
  },
  'login.externalTokens': (r, e) => {
    const login = e as Of<'login.externalTokens'>;
    const accessToken = login.claims === null ? 'not-a-jwt' : hostToken(`host-${Date.now()}`);
    if (login.claims !== null) r.hostAccessToken = accessToken;
    r.request('account/login/start', { type: 'chatgptAuthTokens', accessToken, chatgptAccountId: login.accountId });
  },
  'login.chatgpt': (r) => {
    r.loginId = null;
    r.request('account/login/start', { type: 'chatgptDeviceCode' }).then(
      (m) => {
        if (m.result?.loginId) {
          r.loginId = m.result.loginId;
          r.userCode = m.result.userCode;
        }
      },
      () => {}, // finish() reports a missing answer
    );
  },
  'login.cancel': async (r, _e, _a, before) => void r.request('account/login/cancel', { loginId: await loginIdFor(r, before) }),
  'login.complete': async (r, _e, _a, before) => void r.request('account/login/complete', { loginId: await loginIdFor(r, before), redirectUrl: PASTED }),
  logout: async (r) => {
    await r.holdWrites();
    r.request('account/logout');
  },
  'usage.read': (r, e) => void r.request('account/usage/read', { threadId: (e as Of<'usage.read'>).threadId }),
  'securitySetup.read': (r) => void r.request('account/securitySetup/read'),
  'workspaceMessages.read': (r) => void r.request('account/workspaceMessages/read', {}),
  'resetCredit.consume': (r) => void r.request('account/rateLimitResetCredit/consume', { idempotencyKey: 'k', creditId: null }),
  'addCreditsNudge.send': (r) => void r.request('account/sendAddCreditsNudgeEmail', { creditType: 'credits' }),
  'gatewayOAuth.read': (r) => void r.request('account/gatewayOAuth/read', { modelProvider: null }),
  'gatewayOAuth.login': (r) => void r.request('account/gatewayOAuth/login', { modelProvider: null, deviceAuth: false }),
  'gatewayOAuth.cancel': (r) => void r.request('account/gatewayOAuth/cancel'),

  'xstate.done.actor.load': async (r, e) => {
    const stored = output(e) as { kind: string } | null;
    r.releaseLoad(stored === null ? '{}' : stored.kind === 'apiKey' ? r.apiKeyFile() : await r.storedChatgpt());
  },
  'xstate.error.actor.load': (r) => r.releaseLoad('{ corrupt'),
  'xstate.done.actor.saveApiKey': (r) => r.releaseWrite(true),
  'xstate.error.actor.saveApiKey': (r) => r.releaseWrite(false),
  'xstate.done.actor.clear': (r) => r.releaseWrite(true),
  'xstate.error.actor.clear': (r) => r.releaseWrite(false),

  'session.routed': async (r) => {
    await discovery(r);
    r.release('discover', true);
  },
  'session.unrouted': async (r) => {
    await discovery(r);
    r.release('discover', false);
  },
  'session.refreshed': async (r) => {
    if (!refreshInFlight(r)) r.request('account/read', { refreshToken: true });
    await releaseRefresh(r, true);
  },
  'session.refreshFailed': async (r) => {
    if (!refreshInFlight(r)) r.request('account/read', { refreshToken: true });
    await releaseRefresh(r, false);
  },
  'session.answered': async (r) => {
    if (!r.isHeld('call')) {
      r.request('account/rateLimits/read');
      if (!(await r.heldSoon('call', 1_000)) && r.isHeld('discover')) r.release('discover', true);
      if (!(await r.heldSoon('call'))) throw new Error('no backend call was made');
    }
    await answerCalls(r, true);
  },

  'loginAttempt.ready': async (r) => {
    if (!(await r.heldSoon('usercode'))) throw new Error('the device code was never asked for');
    r.release('usercode', true);
  },
  'loginAttempt.startFailed': async (r) => {
    if (!(await r.heldSoon('usercode'))) throw new Error('the device code was never asked for');
    r.release('usercode', false);
  },
  'loginAttempt.pasteAnswered': async (r, _e, _a, before) =>
    void r.request('account/login/complete', { loginId: await loginIdFor(r, before), redirectUrl: PASTED }),
  'xstate.done.actor.attempt': async (r, e) => {
    const out = output(e) as { status: 'succeeded' | 'failed' | 'notStarted' };
    if (out.status === 'notStarted') return; // follows its startFailed by itself
    if (!r.userCode && (await r.heldSoon('usercode'))) r.release('usercode', true);
    if (!(await eventually(() => r.userCode !== null))) throw new Error('the device login never became ready');
    r.w.issuer.approveDevice(r.userCode!);
    await exchange(r, out.status === 'succeeded');
  },

  'credentials.reloaded': async (r, e) => {
    const auth = (e as Of<'credentials.reloaded'>).auth;
    r.otherProcessWrites(auth === null ? '{}' : auth.kind === 'apiKey' ? r.apiKeyFile() : await r.storedChatgpt());
  },
  'credentials.unreadable': (r) => r.otherProcessWrites('{ corrupt'),
};
