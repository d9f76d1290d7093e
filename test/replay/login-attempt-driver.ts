import { fromCallback, fromPromise } from 'xstate';
import type { LoginAttemptEvent, LoginAttemptInput } from '../../machines/login-attempt-types.js';
import { Secret } from '../../machines/secret.js';
import { chart, EVENTS, grant } from '../machine/login-attempt-samples.js';
import { SAMPLES as ACCOUNT } from '../machine/account-samples.js';
import { ACCOUNT_DRIVERS, type Driver } from './account-driver.js';
import type { GeneratedStep } from './generate.js';
import { eventually, type Replay } from './replay.js';

/**
 * The login attempt child, on its own: its events are the channel's (the
 * browser at the callback server, or the device-code poller), the pastes
 * the root forwards (`account/login/complete`), the ends of its effects
 * (the issuer's token endpoint, the save) and its deadlines. In the real
 * world a browser is played by fetch, the issuer stand-in holds its token
 * answers, and `auth.lock` holds the save.
 */
export type AttemptEvent = LoginAttemptEvent;

export interface AttemptStart {
  input: LoginAttemptInput;
}

const PASTE = 'p';
export const ATTEMPT_EVENTS: AttemptEvent[] = [
  // The finish grace is excluded (test/replay/exclusions.ts): only a stalled process reaches it.
  ...EVENTS.filter((e) => !e.type.startsWith('xstate.after.finishGrace')),
  { type: 'attempt.paste', redirectUrl: new Secret('http://127.0.0.1:1/auth/callback?code=c&state=s'), requestId: PASTE },
  { type: 'channel.code', grant, requestId: PASTE },
  { type: 'channel.failed', detail: 'Sign-in failed: access_denied', requestId: PASTE },
  { type: 'channel.pasteRejected', requestId: PASTE, failure: { kind: 'invalidRedirectUrl', message: 'not a URL' } },
];

const start = (flow: 'browser' | 'device', forcedWorkspaceIds: string[] | null = null): AttemptStart => ({
  input: { loginId: 'l', flow, policy: { forcedLoginMethod: null, forcedWorkspaceIds }, client: null, deadlineMs: 600_000 },
});
export const ATTEMPT_STARTS: AttemptStart[] = [start('browser'), start('device'), start('browser', ['ws-1'])];

/** The attempt chart alone: the channel and the effects never act on their own. */
export const inertAttempt = chart.provide({
  actors: {
    openChannel: fromCallback(() => () => {}),
    exchangeCode: fromPromise(() => new Promise<never>(() => {})),
    exchangeApiKey: fromPromise(() => new Promise<never>(() => {})),
    saveLogin: fromPromise(() => new Promise<never>(() => {})),
  } as never,
});

const FORWARDED = 'loginAttempt.open.running.waiting on attempt.paste #1';
const accountOf = (e: AttemptEvent | undefined) =>
  (e?.type as string) === 'xstate.done.actor.exchangeCode' ? (e as unknown as { output: { claims: { accountId: string } } }).output.claims.accountId : null;
const stateOf = (before: GeneratedStep<AttemptEvent>['before']) => JSON.stringify(before?.value ?? null);

/**
 * What the real world can do, which the attempt chart cannot know: a
 * forwarded paste comes back from the channel at once; the browser's login
 * server is ready as soon as it starts (only the device code can be held,
 * and only it fails to start); a failed attempt's channel, and a saved one's
 * without a browser waiting at the callback, finish at once; the device
 * poller cannot be cancelled or refused; the issuer signs into another
 * workspace only where a policy forbids it.
 */
export function attemptPathAdmissible(steps: GeneratedStep<AttemptEvent>[], { input }: AttemptStart): boolean {
  const browser = input.flow === 'browser';
  let forwarded = false;
  let browserWaits = false;
  for (const [i, { event, keys, before }] of steps.entries()) {
    const fromPaste = 'requestId' in event && event.requestId === PASTE && event.type !== 'attempt.paste';
    if (forwarded !== fromPaste) return false;
    forwarded = false;
    if (i === 0 && event.type !== 'channel.ready' && (browser || event.type !== 'channel.startFailed')) return false;
    if (browser && event.type === 'channel.startFailed') return false;
    if (!browser && (event.type === 'channel.cancelled' || event.type === 'channel.failed')) return false;
    if (accountOf(event) === 'ws-2' && !input.policy.forcedWorkspaceIds) return false;
    const state = stateOf(before);
    if (state.includes('"reporting"') && event.type !== 'channel.finished') return false;
    if (state.includes('"confirming"') && !browserWaits && event.type !== 'channel.finished') return false;
    if (event.type === 'channel.code') browserWaits = browser && !fromPaste;
    if (keys.includes(FORWARDED)) forwarded = true;
  }
  return !forwarded;
}

const origin = (r: Replay) => new URL(new URL(r.authUrl!).searchParams.get('redirect_uri')!).origin;

/** The user at the issuer: signs in (to the workspace the path's exchange names) and is sent to the callback. */
async function authorize(r: Replay, ahead: AttemptEvent[], outcome: 'approve' | 'deny'): Promise<string> {
  await until(() => r.authUrl !== null, 'the browser login never became ready');
  const accountId = ahead.map(accountOf).find((a) => a !== null) ?? 'ws-1';
  r.w.issuer.user = { ...r.w.issuer.user, accountId };
  r.w.issuer.authorize = outcome === 'approve' ? 'approve' : { error: 'access_denied', description: 'no' };
  const res = await fetch(r.authUrl!, { redirect: 'manual' });
  r.w.issuer.authorize = 'approve';
  const location = res.headers.get('location');
  if (res.status !== 302 || !location) throw new Error(`the issuer did not redirect (${res.status})`);
  return location;
}

async function until(ready: () => boolean, what: string): Promise<void> {
  if (!(await eventually(ready, 5_000))) throw new Error(what);
}

const browserOf = (before: GeneratedStep<AttemptEvent>['before']) => before?.context.flow === 'browser';
const nothing: Driver<AttemptEvent> = () => {};

export const ATTEMPT_DRIVERS: Record<string, Driver<AttemptEvent>> = {
  'channel.ready': async (r, _e, _a, before) => {
    if (browserOf(before)) return; // the login server is ready as soon as it listens
    if (!(await r.heldSoon('usercode'))) throw new Error('the device code was never asked for');
    r.release('usercode', true);
  },
  'channel.startFailed': async (r) => {
    if (!(await r.heldSoon('usercode'))) throw new Error('the device code was never asked for');
    r.release('usercode', false);
  },
  'channel.code': async (r, e, ahead, before) => {
    if ((e as { requestId: string | null }).requestId !== null) return; // the paste brought it
    if (!browserOf(before)) {
      await until(() => r.userCode !== null, 'the device login never became ready');
      r.w.issuer.approveDevice(r.userCode!);
      return;
    }
    const callback = await authorize(r, ahead, 'approve');
    r.callback = fetch(callback, { redirect: 'manual' });
    r.callback.catch(() => {});
  },
  'channel.failed': async (r, e, ahead) => {
    if ((e as { requestId: string | null }).requestId !== null) return;
    const callback = await authorize(r, ahead, 'deny');
    r.callback = fetch(callback, { redirect: 'manual' });
    r.callback.catch(() => {});
  },
  'channel.pasteRejected': nothing,
  'channel.cancelled': async (r) => {
    await until(() => r.authUrl !== null, 'the browser login never became ready');
    const res = await fetch(`${origin(r)}/cancel`);
    if (!res.ok) throw new Error(`/cancel answered ${res.status}`);
  },
  'channel.finished': async (r, _e, _a, before) => {
    // A browser waiting at the callback is sent on to /success; anything else finishes at once.
    if (!browserOf(before) || !JSON.stringify(before?.value).includes('"confirming"') || !r.callback) return;
    const redirect = await r.callback;
    r.callback = null;
    const location = redirect.headers.get('location');
    if (!location) throw new Error(`the callback did not redirect (${redirect.status})`);
    await fetch(new URL(location, origin(r)));
  },
  'xstate.done.actor.exchangeCode': async (r) => exchange(r, true),
  'xstate.error.actor.exchangeCode': async (r) => exchange(r, false),
  'xstate.done.actor.exchangeApiKey': async (r) => exchange(r, true),
  'xstate.error.actor.exchangeApiKey': async (r) => exchange(r, false),
  'xstate.done.actor.saveLogin': (r) => r.releaseWrite(true),
  'xstate.error.actor.saveLogin': (r) => r.releaseWrite(false),
  // The short deadline the world was started with runs out; the browser never comes back.
  'xstate.after.loginDeadline.loginAttempt.open.running': nothing,
  'xstate.after.successPageGrace.loginAttempt.open.confirming': nothing,
  'attempt.paste': async (r, _e, ahead) => {
    const next = ahead[0];
    const forwarded = next && 'requestId' in next && next.requestId === PASTE;
    const url = !forwarded
      ? 'http://127.0.0.1:1/auth/callback?code=c&state=s'
      : next.type === 'channel.pasteRejected'
        ? 'not a url'
        : await authorize(r, ahead, next.type === 'channel.code' ? 'approve' : 'deny');
    await until(() => r.pendingLoginId() !== null, 'no login to paste into');
    r.request('account/login/complete', { loginId: r.pendingLoginId(), redirectUrl: url });
  },
};

async function exchange(r: Replay, ok: boolean): Promise<void> {
  if (!(await r.heldSoon('token', 5_000))) throw new Error('the issuer was never asked for tokens');
  r.release('token', ok);
}

/** The login deadline in worlds whose path lets it run out. */
export const LOGIN_DEADLINE_MS = 1_500;

/** Starts a login of the path's flow in a logged-out server, its save held at `auth.lock`. */
export async function startAttempt(r: Replay, { input }: AttemptStart, steps: AttemptEvent[]): Promise<void> {
  const timesOut = steps.some((e) => e.type.startsWith('xstate.after.loginDeadline'));
  await r.start({
    policy: input.policy,
    env: timesOut ? { CODEX_ACCOUNT_SERVER_LOGIN_TIMEOUT_MS: String(LOGIN_DEADLINE_MS) } : {},
  });
  await ACCOUNT_DRIVERS['client.identify']!(r, ACCOUNT['client.identify']![0]!, []);
  await ACCOUNT_DRIVERS['xstate.done.actor.load']!(r, ACCOUNT['xstate.done.actor.load']![0]!, []);
  await r.holdWrites();
  r.request('account/login/start', { type: input.flow === 'browser' ? 'chatgpt' : 'chatgptDeviceCode' }).then(
    (m) => {
      r.loginId = m.result?.loginId ?? null;
      r.authUrl = m.result?.authUrl ?? null;
      r.userCode = m.result?.userCode ?? null;
    },
    () => {},
  );
}
