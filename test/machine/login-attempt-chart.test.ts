import { describe, expect, it } from 'vitest';
import { createActor, fromCallback, fromPromise, setup, type AnyActorRef } from 'xstate';
import type { LoginFlow, StoredAuth } from '../../machines/account-types.js';
import { loginAttemptMachine } from '../../machines/login-attempt-machine.js';
import type {
  ChannelCommand,
  ChannelEvent,
  ExchangedTokens,
  LoginAttemptCommand,
  LoginAttemptOutput,
  LoginAttemptReport,
} from '../../machines/login-attempt-types.js';
import { Secret } from '../../machines/secret.js';
import { quiet } from './harness.js';

/**
 * The real login-attempt chart with a scripted channel: the test says when
 * the callback server or device poller is ready, which code arrives, and
 * what it answers. This reaches the steps a real issuer cannot stop at (a
 * paste before the channel is ready). The effects are stand-ins
 * or, where named, the defaults nobody provided.
 */

const TOKENS: ExchangedTokens = {
  idToken: new Secret('id'),
  accessToken: new Secret('access'),
  refreshToken: new Secret('refresh'),
  claims: { email: 'a@b.c', userId: 'user-1', accountId: 'ws-1', planType: 'plus' },
};
const GRANT = { code: new Secret('code'), verifier: new Secret('verifier'), redirectUri: 'http://127.0.0.1:1455/auth/callback' };
const BROWSER_DETAILS = { flow: 'browser' as const, authUrl: new Secret('http://issuer/oauth/authorize') };

interface Options {
  flow?: LoginFlow;
  /** Leave these effects to the chart's defaults (nobody provided them). */
  unprovided?: Array<'exchangeCode' | 'exchangeApiKey' | 'saveLogin'>;
  exchangeFails?: unknown;
}

function startChart(options: Options = {}) {
  const flow = options.flow ?? 'browser';
  const commands: ChannelCommand[] = [];
  const saves: Array<{ apiKey: Secret | null }> = [];
  let channel: ((event: ChannelEvent) => void) | null = null;
  const effects = {
    exchangeCode: fromPromise<ExchangedTokens, unknown>(async () => {
      if (options.exchangeFails !== undefined) throw options.exchangeFails;
      return TOKENS;
    }),
    exchangeApiKey: fromPromise<Secret, unknown>(async () => new Secret('sk-exchanged')),
    saveLogin: fromPromise<StoredAuth, { apiKey: Secret | null }>(async ({ input }) => {
      saves.push(input);
      return { kind: 'apiKey', apiKey: new Secret('sk-saved') };
    }),
  };
  for (const name of options.unprovided ?? []) delete (effects as Partial<typeof effects>)[name];
  const attempt = loginAttemptMachine.provide({
    actors: {
      openChannel: fromCallback<ChannelCommand>(({ sendBack, receive }) => {
        channel = sendBack as (event: ChannelEvent) => void;
        receive((command) => commands.push(command));
      }),
      ...effects,
    } as never,
  });
  const reports: LoginAttemptReport[] = [];
  let output: LoginAttemptOutput | null = null;
  const parent = setup({ actors: { attempt } }).createMachine({
    invoke: {
      id: 'attempt',
      src: 'attempt',
      input: { loginId: 'login-1', flow, policy: { forcedLoginMethod: null, forcedWorkspaceIds: null }, client: null, deadlineMs: 60_000 },
      onDone: { actions: ({ event }) => (output = event.output) },
    },
    on: { '*': { actions: ({ event }) => reports.push(event as LoginAttemptReport) } },
  });
  const actor = createActor(parent).start();
  const child = () => actor.getSnapshot().children.attempt as AnyActorRef | undefined;
  const settle = () => {
    let seen: unknown[] = [reports.length, output, commands.length];
    return quiet(() => {
      const now = [reports.length, output, commands.length];
      const changed = now.some((v, i) => v !== seen[i]);
      seen = now;
      return changed;
    });
  };
  return {
    reports,
    commands,
    saves,
    output: () => output,
    settle,
    send: (event: LoginAttemptCommand) => child()?.send(event),
    channel: (event: ChannelEvent) => channel!(event),
    paste: (requestId: string) => child()?.send({ type: 'attempt.paste', redirectUrl: new Secret('http://127.0.0.1:1455/auth/callback?code=c&state=s'), requestId }),
  };
}

describe('before the channel is ready', () => {
  it('answers a paste into a browser login as not waiting yet', async () => {
    const a = startChart();
    a.paste('r1');
    await a.settle();
    expect(a.reports).toEqual([
      {
        type: 'loginAttempt.pasteAnswered',
        loginId: 'login-1',
        requestId: 'r1',
        ok: false,
        failure: { kind: 'loginNotWaiting', message: 'the login is not waiting for a redirect URL' },
      },
    ]);
    expect(a.commands).toEqual([]);
  });

  it('refuses a paste into a device login: only browser logins take one', async () => {
    const a = startChart({ flow: 'device' });
    a.paste('r1');
    await a.settle();
    expect(a.reports).toEqual([
      { type: 'loginAttempt.pasteAnswered', loginId: 'login-1', requestId: 'r1', ok: false, failure: { kind: 'pasteNotSupported' } },
    ]);
  });

  it('passes the channel’s start failure on, ending as not started', async () => {
    const a = startChart();
    const failure = { kind: 'loginServerFailed' as const, message: 'failed to start login server: Port 127.0.0.1:1457 is already in use' };
    a.channel({ type: 'channel.startFailed', failure });
    await a.settle();
    expect(a.reports).toEqual([{ type: 'loginAttempt.startFailed', loginId: 'login-1', failure }]);
    expect(a.output()).toEqual({ loginId: 'login-1', status: 'notStarted', failure });
  });
});

describe('once ready', () => {
  it('reports ready once with the channel’s details', async () => {
    const a = startChart();
    a.channel({ type: 'channel.ready', details: BROWSER_DETAILS });
    await a.settle();
    expect(a.reports).toEqual([{ type: 'loginAttempt.ready', loginId: 'login-1', details: BROWSER_DETAILS }]);
  });

  it('forwards a paste to the channel and answers the channel’s refusal', async () => {
    const a = startChart();
    a.channel({ type: 'channel.ready', details: BROWSER_DETAILS });
    a.paste('r1');
    await a.settle();
    expect(a.commands).toEqual([{ type: 'channel.paste', redirectUrl: expect.any(Secret), requestId: 'r1' }]);
    a.channel({ type: 'channel.pasteRejected', requestId: 'r1', failure: { kind: 'redirectStateMismatch' } });
    await a.settle();
    expect(a.reports.at(-1)).toEqual({
      type: 'loginAttempt.pasteAnswered',
      loginId: 'login-1',
      requestId: 'r1',
      ok: false,
      failure: { kind: 'redirectStateMismatch' },
    });
  });

  it('answers the paste that carried a failing redirect with the login’s failure text', async () => {
    const a = startChart();
    a.channel({ type: 'channel.ready', details: BROWSER_DETAILS });
    a.channel({ type: 'channel.failed', detail: 'access_denied', requestId: 'r1' });
    await a.settle();
    const error = 'Login server error: access_denied';
    expect(a.commands).toEqual([{ type: 'channel.finish', result: { ok: false, message: error } }]);
    a.channel({ type: 'channel.finished' });
    await a.settle();
    expect(a.reports.at(-1)).toEqual({
      type: 'loginAttempt.pasteAnswered',
      loginId: 'login-1',
      requestId: 'r1',
      ok: false,
      failure: { kind: 'loginFailed', message: error },
    });
    expect(a.output()).toEqual({ loginId: 'login-1', status: 'failed', error });
  });

  it('answers a pasted code once the credentials are saved, and hands the browser the new tokens', async () => {
    const a = startChart();
    a.channel({ type: 'channel.ready', details: BROWSER_DETAILS });
    a.channel({ type: 'channel.code', grant: GRANT, requestId: 'r1' });
    await a.settle();
    expect(a.commands).toEqual([
      { type: 'channel.finish', result: { ok: true, idToken: TOKENS.idToken, accessToken: TOKENS.accessToken } },
    ]);
    a.channel({ type: 'channel.finished' });
    await a.settle();
    expect(a.reports.at(-1)).toEqual({ type: 'loginAttempt.pasteAnswered', loginId: 'login-1', requestId: 'r1', ok: true });
    expect(a.output()).toMatchObject({ status: 'succeeded' });
    expect(a.saves.map((input) => input.apiKey?.reveal())).toEqual(['sk-exchanged']);
  });

  it('ends as taken over when another login server cancels it (SPEC §6.1 GET /cancel), answering no paste', async () => {
    const a = startChart();
    a.channel({ type: 'channel.ready', details: BROWSER_DETAILS });
    a.channel({ type: 'channel.cancelled' });
    a.channel({ type: 'channel.finished' });
    await a.settle();
    expect(a.output()).toEqual({ loginId: 'login-1', status: 'failed', error: 'Login server error: Login cancelled' });
    expect(a.reports.map((r) => r.type)).toEqual(['loginAttempt.ready']);
  });

  it('answers no paste when a browser sign-in ends without one', async () => {
    const a = startChart();
    a.channel({ type: 'channel.ready', details: BROWSER_DETAILS });
    a.channel({ type: 'channel.code', grant: GRANT, requestId: null });
    await a.settle();
    a.channel({ type: 'channel.finished' });
    await a.settle();
    expect(a.output()).toMatchObject({ status: 'succeeded' });
    expect(a.reports.map((r) => r.type)).toEqual(['loginAttempt.ready']);
  });

  it('words a code exchange that failed without a message as an unknown error', async () => {
    const a = startChart({ exchangeFails: { kind: 'loginFailed' } });
    a.channel({ type: 'channel.ready', details: BROWSER_DETAILS });
    a.channel({ type: 'channel.code', grant: GRANT, requestId: null });
    await a.settle();
    a.channel({ type: 'channel.finished' });
    await a.settle();
    expect(a.output()).toEqual({ loginId: 'login-1', status: 'failed', error: 'Login server error: Token exchange failed: unknown error' });
  });
});

describe('effects nobody provided', () => {
  it('leave a login without a channel not started, saying so', async () => {
    const reports: LoginAttemptReport[] = [];
    let output: LoginAttemptOutput | null = null;
    const parent = setup({ actors: { attempt: loginAttemptMachine } }).createMachine({
      invoke: {
        src: 'attempt',
        input: { loginId: 'login-1', flow: 'browser', policy: { forcedLoginMethod: null, forcedWorkspaceIds: null }, client: null, deadlineMs: 1_000 },
        onDone: { actions: ({ event }) => (output = event.output) },
      },
      on: { '*': { actions: ({ event }) => reports.push(event as LoginAttemptReport) } },
    });
    createActor(parent).start();
    const failure = { kind: 'notImplemented', message: 'ChatGPT login is not available in this build' };
    expect(reports).toEqual([{ type: 'loginAttempt.startFailed', loginId: 'login-1', failure }]);
    expect(output).toEqual({ loginId: 'login-1', status: 'notStarted', failure });
  });

  /** A browser sign-in from the code to the end, with one effect not provided. */
  async function signInWithout(effect: 'exchangeCode' | 'exchangeApiKey' | 'saveLogin') {
    const a = startChart({ unprovided: [effect] });
    a.channel({ type: 'channel.ready', details: BROWSER_DETAILS });
    a.channel({ type: 'channel.code', grant: GRANT, requestId: null });
    await a.settle();
    a.channel({ type: 'channel.finished' });
    await a.settle();
    return a;
  }

  it('fail the login naming the missing effect instead of hanging', async () => {
    const a = await signInWithout('exchangeCode');
    expect(a.output()).toEqual({
      loginId: 'login-1',
      status: 'failed',
      error: 'Login server error: Token exchange failed: token exchange is not available in this build',
    });
  });

  it('sign in without an API key when the API key exchange was not provided', async () => {
    const a = await signInWithout('exchangeApiKey');
    expect(a.output()).toMatchObject({ status: 'succeeded' });
    expect(a.saves.map((input) => input.apiKey)).toEqual([null]);
  });

  it('fail the login with the save text when saving was not provided', async () => {
    const a = await signInWithout('saveLogin');
    expect(a.output()).toEqual({
      loginId: 'login-1',
      status: 'failed',
      error: 'Login server error: Sign-in completed but credentials could not be saved locally.',
    });
  });
});
