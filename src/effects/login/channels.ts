import { toFailure } from '../../../machines/account-guards.js';
import type { AuthFailure } from '../../../machines/account-types.js';
import type { ChannelCommand, ChannelEvent, ChannelInput } from '../../../machines/login-attempt-types.js';
import { Secret } from '../../../machines/secret.js';
import { openCallbackServer, type CallbackServer } from './callback-server.js';
import { pollDeviceCode, requestDeviceCode } from './device-code.js';
import type { LoginDeps } from './deps.js';
import { buildAuthorizeUrl, createPkce, createState } from './oauth.js';

/** The running side of a channel: the attempt's commands go here. */
export interface ChannelHandle {
  receive(command: ChannelCommand): void;
}

type SendBack = (event: ChannelEvent) => void;

const pasteRefused = (requestId: string, failure: AuthFailure): ChannelEvent => ({ type: 'channel.pasteRejected', requestId, failure });

/**
 * Browser channel: a PKCE pair and state, the callback server, the authorize
 * URL. Reports `channel.ready` once listening, then codes, failures,
 * `/cancel`, and `channel.finished` once `channel.finish` is through (after
 * `/success` when a browser was redirected there). Aborting closes the port.
 */
export function openBrowserChannel(deps: LoginDeps, input: ChannelInput, sendBack: SendBack, signal: AbortSignal): ChannelHandle {
  const pkce = createPkce();
  const state = createState();
  let server: CallbackServer | null = null;
  const grantFor = (code: string) => ({ code: new Secret(code), verifier: new Secret(pkce.verifier), redirectUri: server!.redirectUri });

  openCallbackServer({
    ports: deps.ports,
    issuer: deps.issuer,
    state,
    log: deps.log,
    signal,
    ...(deps.bindAttempts === undefined ? {} : { bindAttempts: deps.bindAttempts }),
    ...(deps.retryDelayMs === undefined ? {} : { retryDelayMs: deps.retryDelayMs }),
    listener: {
      onCode: (code) => sendBack({ type: 'channel.code', grant: grantFor(code), requestId: null }),
      onFailed: (detail) => sendBack({ type: 'channel.failed', detail, requestId: null }),
      onCancel: () => sendBack({ type: 'channel.cancelled' }),
      onSuccessPage: () => sendBack({ type: 'channel.finished' }),
    },
  }).then(
    (opened) => {
      server = opened;
      const authUrl = buildAuthorizeUrl({
        issuer: deps.issuer,
        redirectUri: opened.redirectUri,
        challenge: pkce.challenge,
        state,
        originator: input.client?.originator ?? 'codex_cli_rs',
        allowedWorkspaceIds: input.policy.forcedWorkspaceIds,
      });
      deps.log.info(`login ${input.loginId}: callback server listening on 127.0.0.1:${opened.port}`);
      sendBack({ type: 'channel.ready', details: { flow: 'browser', authUrl: new Secret(authUrl) } });
    },
    (error: unknown) => {
      if (!signal.aborted) sendBack({ type: 'channel.startFailed', failure: toFailure(error, 'loginServerFailed') });
    },
  );

  return {
    receive(command) {
      if (server === null) return; // the attempt talks to its channel only once it is ready
      if (command.type === 'channel.paste') {
        const check = server.checkPaste(command.redirectUrl.reveal());
        const { requestId } = command;
        switch (check.kind) {
          case 'code':
            return sendBack({ type: 'channel.code', grant: grantFor(check.code), requestId });
          case 'issuerError':
            return sendBack({ type: 'channel.failed', detail: check.detail, requestId });
          case 'invalidUrl':
            return sendBack(pasteRefused(requestId, { kind: 'invalidRedirectUrl', message: check.detail }));
          case 'stateMismatch':
            return sendBack(pasteRefused(requestId, { kind: 'redirectStateMismatch', message: 'State mismatch' }));
          case 'missingCode':
            return sendBack(
              pasteRefused(requestId, { kind: 'redirectMissingCode', message: 'Missing authorization code. Sign-in could not be completed.' }),
            );
          case 'alreadyUsed':
            return sendBack(pasteRefused(requestId, { kind: 'loginNotWaiting', message: 'this sign-in was already received' }));
        }
      }
      const { result } = command;
      void server
        .finish(result.ok ? { ok: true, idToken: result.idToken.reveal(), accessToken: result.accessToken.reveal() } : result)
        .then((held) => {
          // A redirected browser ends the flow at /success; otherwise it is over now.
          if (!result.ok || !held) sendBack({ type: 'channel.finished' });
        });
    },
  };
}

/**
 * Device channel (SPEC §7): asks for a user code (`channel.ready`, or
 * `channel.startFailed`), then polls until the user approves (`channel.code`),
 * the code expires or polling fails (`channel.failed`). Aborting stops polling.
 */
export function openDeviceChannel(deps: LoginDeps, input: ChannelInput, sendBack: SendBack, signal: AbortSignal): ChannelHandle {
  void (async () => {
    let device;
    try {
      deps.log.info(`login ${input.loginId}: asking the issuer for a device code`);
      device = await requestDeviceCode(deps, deps.issuer, signal);
    } catch (error) {
      if (!signal.aborted) sendBack({ type: 'channel.startFailed', failure: toFailure(error, 'deviceCodeFailed') });
      return;
    }
    if (signal.aborted) return;
    sendBack({ type: 'channel.ready', details: { flow: 'device', verificationUrl: device.verificationUrl, userCode: new Secret(device.userCode) } });
    try {
      const grant = await pollDeviceCode(deps, deps.issuer, device, signal, deps.devicePoll);
      sendBack({ type: 'channel.code', grant, requestId: null });
    } catch (error) {
      if (!signal.aborted) sendBack({ type: 'channel.failed', detail: (error as Error).message, requestId: null });
    }
  })();
  return {
    receive(command) {
      if (command.type === 'channel.finish') sendBack({ type: 'channel.finished' });
      else sendBack(pasteRefused(command.requestId, { kind: 'pasteNotSupported' }));
    },
  };
}
