import { assertEvent, assign, enqueueActions, fromCallback, fromPromise, sendParent, sendTo, setup } from 'xstate';
import { isWorkspaceAllowed, toFailure } from './account-guards.js';
import { notProvided } from './not-provided.js';
import { loginErrors } from './wording.js';

export { loginErrors } from './wording.js';
import type { AuthFailure, LoginFlow, Policy, StoredAuth } from './account-types.js';
import type {
  ChannelCommand,
  ChannelInput,
  ExchangedTokens,
  ExchangeCodeInput,
  Grant,
  LoginAttemptEvent,
  LoginAttemptInput,
  LoginAttemptOutput,
  LoginAttemptReport,
  LoginReadyDetails,
  SaveLoginInput,
} from './login-attempt-types.js';
import type { Secret } from './secret.js';

export type * from './login-attempt-types.js';

export interface LoginAttemptContext {
  loginId: string;
  flow: LoginFlow;
  policy: Policy;
  client: LoginAttemptInput['client'];
  deadlineMs: number;
  details: LoginReadyDetails | null;
  grant: Grant | null;
  /** The `account/login/complete` request that delivered the code, answered when the attempt ends. */
  pasteRequestId: string | null;
  tokens: ExchangedTokens | null;
  apiKey: Secret | null;
  auth: StoredAuth | null;
  /** The `account/login/completed.error` text once the attempt has failed. */
  error: string | null;
  startFailure: AuthFailure | null;
}

/** How long a redirected browser has to fetch `/success` before the attempt ends anyway. */
export const SUCCESS_PAGE_GRACE_MS = 10_000;
/** How long the channel has to answer a held callback on failure. */
export const FINISH_GRACE_MS = 2_000;

type Ctx = { context: LoginAttemptContext };

function pasteAnswer(context: LoginAttemptContext, requestId: string, failure: AuthFailure | null): LoginAttemptReport {
  return failure === null
    ? { type: 'loginAttempt.pasteAnswered', loginId: context.loginId, requestId, ok: true }
    : { type: 'loginAttempt.pasteAnswered', loginId: context.loginId, requestId, ok: false, failure };
}

/**
 * One ChatGPT sign-in (browser or device code), started by the account
 * machine and ended by its final state's output. Its channel (callback server
 * or device poller) lives in `open`; leaving `open` closes the port or stops
 * polling. Effects are injected with `createLoginActors` (src/effects/login).
 */
export const loginAttemptMachine = setup({
  types: {
    context: {} as LoginAttemptContext,
    events: {} as LoginAttemptEvent,
    input: {} as LoginAttemptInput,
    output: {} as LoginAttemptOutput,
  },
  actors: {
    openChannel: fromCallback<ChannelCommand, ChannelInput>(({ sendBack }) => {
      sendBack({ type: 'channel.startFailed', failure: { kind: 'notImplemented', message: 'ChatGPT login is not available in this build' } });
    }),
    exchangeCode: fromPromise<ExchangedTokens, ExchangeCodeInput>(notProvided('token exchange')),
    exchangeApiKey: fromPromise<Secret, { idToken: Secret }>(notProvided('API key exchange')),
    saveLogin: fromPromise<StoredAuth, SaveLoginInput>(notProvided('saving credentials')),
  },
  delays: {
    loginDeadline: ({ context }) => context.deadlineMs,
    successPageGrace: SUCCESS_PAGE_GRACE_MS,
    finishGrace: FINISH_GRACE_MS,
  },
  guards: {
    isDeviceFlow: ({ context }) => context.flow === 'device',
    isBrowserFlow: ({ context }) => context.flow === 'browser',
    isWorkspaceForbidden: ({ context }, tokens: ExchangedTokens) => !isWorkspaceAllowed(context.policy, tokens.claims.accountId),
  },
  actions: {
    rememberDetails: assign({
      details: ({ event }) => {
        assertEvent(event, 'channel.ready');
        return event.details;
      },
    }),
    reportReady: sendParent(({ context }: Ctx) => ({
      type: 'loginAttempt.ready',
      loginId: context.loginId,
      details: context.details!,
    }) satisfies LoginAttemptReport),
    rememberStartFailure: assign({
      startFailure: ({ event }) => {
        assertEvent(event, 'channel.startFailed');
        return event.failure;
      },
    }),
    reportStartFailed: sendParent(({ context }: Ctx) => ({
      type: 'loginAttempt.startFailed',
      loginId: context.loginId,
      failure: context.startFailure!,
    }) satisfies LoginAttemptReport),
    rememberGrant: assign(({ event }) => {
      assertEvent(event, 'channel.code');
      return { grant: event.grant, pasteRequestId: event.requestId };
    }),
    forwardPaste: sendTo('channel', ({ event }) => {
      assertEvent(event, 'attempt.paste');
      return { type: 'channel.paste', redirectUrl: event.redirectUrl, requestId: event.requestId } satisfies ChannelCommand;
    }),
    answerPasteRejected: sendParent(({ context, event }) => {
      assertEvent(event, 'channel.pasteRejected');
      return pasteAnswer(context, event.requestId, event.failure);
    }),
    answerPasteNotWaiting: sendParent(({ context, event }) => {
      assertEvent(event, 'attempt.paste');
      return pasteAnswer(context, event.requestId, { kind: 'loginNotWaiting', message: 'the login is not waiting for a redirect URL' });
    }),
    answerPasteNotSupported: sendParent(({ context, event }) => {
      assertEvent(event, 'attempt.paste');
      return pasteAnswer(context, event.requestId, { kind: 'pasteNotSupported' });
    }),
    failChannel: assign(({ context, event }) => {
      assertEvent(event, 'channel.failed');
      return { error: loginErrors.flow(context.flow, event.detail), pasteRequestId: event.requestId ?? context.pasteRequestId };
    }),
    failTakenOver: assign({ error: loginErrors.takenOver }),
    failTimedOut: assign({ error: loginErrors.timedOut }),
    failExchange: assign({
      error: ({ context, event }) =>
        loginErrors.exchange(context.flow, toFailure('error' in event ? event.error : undefined).message ?? 'unknown error'),
    }),
    failWorkspace: assign({
      error: ({ context }, tokens: ExchangedTokens) =>
        loginErrors.workspace(context.flow, context.policy.forcedWorkspaceIds ?? [], tokens.claims.accountId),
    }),
    failSave: assign({ error: ({ context }) => loginErrors.save(context.flow) }),
    rememberTokens: assign({ tokens: (_, tokens: ExchangedTokens) => tokens }),
    rememberApiKey: assign({ apiKey: (_, apiKey: Secret | null) => apiKey }),
    rememberAuth: assign({ auth: (_, auth: StoredAuth) => auth }),
    finishChannelWithFailure: sendTo('channel', ({ context }) => ({
      type: 'channel.finish',
      result: { ok: false, message: context.error ?? 'Login failed' },
    }) satisfies ChannelCommand),
    finishChannelWithSuccess: sendTo('channel', ({ context }) => ({
      type: 'channel.finish',
      result: { ok: true, idToken: context.tokens!.idToken, accessToken: context.tokens!.accessToken },
    }) satisfies ChannelCommand),
    /** The paste that drove the attempt (if one did) is answered when it ends. */
    answerPasteOutcome: enqueueActions(({ context, enqueue }) => {
      if (context.pasteRequestId === null) return;
      const failure: AuthFailure | null =
        context.auth !== null && context.error === null ? null : { kind: 'loginFailed', message: context.error ?? 'Login failed' };
      enqueue.sendParent(pasteAnswer(context, context.pasteRequestId, failure));
    }),
  },
}).createMachine({
  id: 'loginAttempt',
  context: ({ input }) => ({
    loginId: input.loginId,
    flow: input.flow,
    policy: input.policy,
    client: input.client,
    deadlineMs: input.deadlineMs,
    details: null,
    grant: null,
    pasteRequestId: null,
    tokens: null,
    apiKey: null,
    auth: null,
    error: null,
    startFailure: null,
  }),
  initial: 'open',
  states: {
    /** The channel is up while here: the callback server listens, or the device poller runs. */
    open: {
      invoke: {
        id: 'channel',
        src: 'openChannel',
        input: ({ context }) => ({ loginId: context.loginId, flow: context.flow, policy: context.policy, client: context.client }),
      },
      initial: 'starting',
      on: {
        // Wherever no state below says otherwise, a paste finds the attempt busy or ending.
        'attempt.paste': [
          { guard: 'isDeviceFlow', actions: 'answerPasteNotSupported' },
          { actions: 'answerPasteNotWaiting' },
        ],
      },
      states: {
        /** Binding the callback port (with takeover and fallback) or asking for a user code. */
        starting: {
          on: {
            'channel.ready': { target: 'running', actions: ['rememberDetails', 'reportReady'] },
            'channel.startFailed': { target: '#loginAttempt.notStarted', actions: ['rememberStartFailure', 'reportStartFailed'] },
          },
        },
        /** Ready: the deadline runs from here until the credentials are saved. */
        running: {
          initial: 'waiting',
          after: { loginDeadline: { target: 'reporting', actions: 'failTimedOut' } },
          on: {
            'channel.cancelled': { target: 'reporting', actions: 'failTakenOver' },
            'channel.failed': { target: 'reporting', actions: 'failChannel' },
          },
          states: {
            waiting: {
              on: {
                'channel.code': { target: 'exchanging', actions: 'rememberGrant' },
                'channel.pasteRejected': { actions: 'answerPasteRejected' },
                'attempt.paste': [{ guard: 'isDeviceFlow', actions: 'answerPasteNotSupported' }, { actions: 'forwardPaste' }],
              },
            },
            exchanging: {
              invoke: {
                id: 'exchangeCode',
                src: 'exchangeCode',
                input: ({ context }) => ({ flow: context.flow, grant: context.grant! }),
                onDone: [
                  {
                    guard: { type: 'isWorkspaceForbidden', params: ({ event }) => event.output },
                    target: '#loginAttempt.open.reporting',
                    actions: { type: 'failWorkspace', params: ({ event }) => event.output },
                  },
                  {
                    guard: 'isBrowserFlow',
                    target: 'exchangingApiKey',
                    actions: { type: 'rememberTokens', params: ({ event }) => event.output },
                  },
                  { target: 'saving', actions: { type: 'rememberTokens', params: ({ event }) => event.output } },
                ],
                onError: { target: '#loginAttempt.open.reporting', actions: 'failExchange' },
              },
            },
            /** Browser logins also trade the id token for an API key; a failure leaves it `null`. */
            exchangingApiKey: {
              invoke: {
                id: 'exchangeApiKey',
                src: 'exchangeApiKey',
                input: ({ context }) => ({ idToken: context.tokens!.idToken }),
                onDone: { target: 'saving', actions: { type: 'rememberApiKey', params: ({ event }) => event.output } },
                // Not fatal: the login is saved without an API key (SPEC §6.4).
                onError: { target: 'saving' },
              },
            },
            saving: {
              invoke: {
                id: 'saveLogin',
                src: 'saveLogin',
                input: ({ context }) => ({ tokens: context.tokens!, apiKey: context.apiKey }),
                onDone: {
                  target: '#loginAttempt.open.confirming',
                  actions: { type: 'rememberAuth', params: ({ event }) => event.output },
                },
                onError: { target: '#loginAttempt.open.reporting', actions: 'failSave' },
              },
            },
          },
        },
        /** Failed: a held browser callback gets the error page before the port closes. */
        reporting: {
          entry: 'finishChannelWithFailure',
          on: { 'channel.finished': { target: '#loginAttempt.failed' } },
          after: { finishGrace: { target: '#loginAttempt.failed' } },
        },
        /** Saved: a held browser callback is redirected to `/success`, which ends the attempt. */
        confirming: {
          entry: 'finishChannelWithSuccess',
          on: {
            'channel.finished': { target: '#loginAttempt.done' },
            // Once the credentials are saved, the sign-in has happened: a late cancel cannot undo it.
            'channel.cancelled': { target: '#loginAttempt.done' },
          },
          after: { successPageGrace: { target: '#loginAttempt.done' } },
        },
      },
    },
    done: {
      type: 'final',
      entry: 'answerPasteOutcome',
    },
    failed: {
      type: 'final',
      entry: 'answerPasteOutcome',
    },
    notStarted: { type: 'final' },
  },
  output: ({ context }): LoginAttemptOutput => {
    if (context.startFailure !== null) return { loginId: context.loginId, status: 'notStarted', failure: context.startFailure };
    if (context.auth !== null && context.error === null) return { loginId: context.loginId, status: 'succeeded', auth: context.auth };
    return { loginId: context.loginId, status: 'failed', error: context.error ?? 'Login failed' };
  },
});

export type LoginAttemptMachine = typeof loginAttemptMachine;
