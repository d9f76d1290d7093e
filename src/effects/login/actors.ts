import { fromCallback, fromPromise } from 'xstate';
import { toFailure } from '../../../machines/account-guards.js';
import type { StoredAuth, StoredChatgpt } from '../../../machines/account-types.js';
import type {
  ChannelCommand,
  ChannelEvent,
  ChannelInput,
  ExchangedTokens,
  ExchangeCodeInput,
  SaveLoginInput,
} from '../../../machines/login-attempt-types.js';
import type { Secret } from '../../../machines/secret.js';
import type { ChannelHandle } from './channels.js';
import type { LoginDeps } from './deps.js';
import type { RefreshDeps, RefreshInput } from './refresh.js';

export type { LoginDeps } from './deps.js';

// The heavy part (node:http server, jose, the issuer calls) is loaded on the first login only.
let flows: Promise<typeof import('./flows.js')> | undefined;
const load = () => (flows ??= import('./flows.js'));

/**
 * The effects of `loginAttemptMachine`, for `loginAttemptMachine.provide({ actors: createLoginActors(deps) })`.
 * This module is light: it may be imported at start-up; the work is loaded lazily.
 */
export function createLoginActors(deps: LoginDeps) {
  return {
    /** Callback server (browser) or device poller; stopping the actor closes the port / stops polling. */
    openChannel: fromCallback<ChannelCommand, ChannelInput>(({ input, sendBack, receive }) => {
      const abort = new AbortController();
      const send = (event: ChannelEvent) => {
        if (!abort.signal.aborted) sendBack(event);
      };
      let handle: ChannelHandle | null = null;
      const early: ChannelCommand[] = [];
      receive((command) => (handle ? handle.receive(command) : early.push(command)));
      load().then(
        (m) => {
          if (abort.signal.aborted) return;
          const open = input.flow === 'browser' ? m.openBrowserChannel : m.openDeviceChannel;
          handle = open(deps, input, send, abort.signal);
          for (const command of early.splice(0)) handle.receive(command);
        },
        (error: unknown) => send({ type: 'channel.startFailed', failure: toFailure(error) }),
      );
      return () => abort.abort();
    }),
    exchangeCode: fromPromise<ExchangedTokens, ExchangeCodeInput>(async ({ input, signal }) =>
      (await load()).exchangeCode(deps, deps.issuer, input.grant, signal),
    ),
    exchangeApiKey: fromPromise<Secret, { idToken: Secret }>(async ({ input, signal }) =>
      (await load()).exchangeApiKey(deps, deps.issuer, input.idToken, signal),
    ),
    saveLogin: fromPromise<StoredAuth, SaveLoginInput>(async ({ input, signal }) => {
      const record = (await load()).buildChatgptRecord(input.tokens, input.apiKey, {
        issuer: deps.issuer,
        ...(deps.now ? { now: deps.now } : {}),
      });
      return deps.saveCredentials(record, signal);
    }),
  };
}

/** The managed refresh (SPEC §8) as an actor, for the session machine. */
export function createRefreshActor(deps: RefreshDeps) {
  return fromPromise<StoredChatgpt, RefreshInput>(async ({ input, signal }) => (await load()).refreshChatgptTokens(deps, input, signal));
}
