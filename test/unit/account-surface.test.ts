import { describe, expect, it } from 'vitest';
import { CHATGPT_GATED, gatedCall, gatewayAnswer, NO_SECURITY_NOTICE } from '../../machines/account-surface.js';
import type { ModelProviders } from '../../machines/account-types.js';

/** The account surface as the machine sees it (SPEC-account-surface §12–§18). */

const ONLY_OPENAI: ModelProviders = { selected: 'openai', configured: [] };
const GATEWAY: ModelProviders = {
  selected: 'gw',
  configured: [
    { id: 'gw', name: 'Team gateway', gatewayOAuth: true },
    { id: 'plain', name: 'Plain provider', gatewayOAuth: false },
  ],
};

const OPENAI_READ = {
  providerId: 'openai',
  providerName: 'OpenAI',
  required: false,
  supportsDeviceAuth: false,
  status: null,
  error: null,
};

describe('the backend call each gated request asks for', () => {
  it('gates usage, workspace messages, consume and nudge on ChatGPT auth, naming each refusal’s <what> (§12.1)', () => {
    expect(CHATGPT_GATED).toEqual({
      'usage.read': 'usage',
      'workspaceMessages.read': 'workspaceMessages',
      'resetCredit.consume': 'consume',
      'addCreditsNudge.send': 'nudge',
    });
  });

  it('asks for the account-wide usage or one thread’s usage (§13)', () => {
    expect(gatedCall({ type: 'usage.read', requestId: 'r1', threadId: null })).toEqual({ kind: 'usage', threadId: null });
    const thread = '0197a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b';
    expect(gatedCall({ type: 'usage.read', requestId: 'r1', threadId: thread })).toEqual({ kind: 'usage', threadId: thread });
  });

  it('asks for the workspace messages (§15)', () => {
    expect(gatedCall({ type: 'workspaceMessages.read', requestId: 'r1' })).toEqual({ kind: 'workspaceMessages' });
  });

  it('passes the idempotency key and credit id of a consume on (§16)', () => {
    expect(gatedCall({ type: 'resetCredit.consume', requestId: 'r1', idempotencyKey: 'key-1', creditId: 'credit-1' })).toEqual({
      kind: 'consume',
      idempotencyKey: 'key-1',
      creditId: 'credit-1',
    });
    expect(gatedCall({ type: 'resetCredit.consume', requestId: 'r1', idempotencyKey: 'key-2', creditId: null })).toEqual({
      kind: 'consume',
      idempotencyKey: 'key-2',
      creditId: null,
    });
  });

  it('passes the credit type of a nudge on (§17)', () => {
    expect(gatedCall({ type: 'addCreditsNudge.send', requestId: 'r1', creditType: 'usage_limit' })).toEqual({
      kind: 'nudge',
      creditType: 'usage_limit',
    });
  });

  it('answers a security setup read with no notice when there is nothing to ask (§14)', () => {
    expect(NO_SECURITY_NOTICE).toEqual({ notice: null });
  });
});

describe('gateway OAuth answers (§18)', () => {
  it('reads the default OpenAI provider as not needing gateway sign-in (§18.2)', () => {
    expect(gatewayAnswer(ONLY_OPENAI, { type: 'gatewayOAuth.read', requestId: 'r1', modelProvider: null })).toEqual({
      ok: true,
      result: OPENAI_READ,
    });
    expect(gatewayAnswer(ONLY_OPENAI, { type: 'gatewayOAuth.read', requestId: 'r1', modelProvider: 'openai' })).toEqual({
      ok: true,
      result: OPENAI_READ,
    });
  });

  it('refuses an unknown provider, naming it (§18.2)', () => {
    expect(gatewayAnswer(ONLY_OPENAI, { type: 'gatewayOAuth.read', requestId: 'r1', modelProvider: 'nope' })).toEqual({
      ok: false,
      failure: { kind: 'modelProviderNotConfigured', modelProvider: 'nope' },
    });
  });

  it('refuses a login for an unknown provider the same way (§18.3)', () => {
    expect(
      gatewayAnswer(ONLY_OPENAI, { type: 'gatewayOAuth.login', requestId: 'r1', modelProvider: 'nope', deviceAuth: false }),
    ).toEqual({ ok: false, failure: { kind: 'modelProviderNotConfigured', modelProvider: 'nope' } });
  });

  it('refuses a login for a provider without gateway OAuth (§18.3)', () => {
    expect(
      gatewayAnswer(ONLY_OPENAI, { type: 'gatewayOAuth.login', requestId: 'r1', modelProvider: null, deviceAuth: false }),
    ).toEqual({ ok: false, failure: { kind: 'gatewayOAuthNotUsed' } });
    expect(
      gatewayAnswer(GATEWAY, { type: 'gatewayOAuth.login', requestId: 'r1', modelProvider: 'plain', deviceAuth: true }),
    ).toEqual({ ok: false, failure: { kind: 'gatewayOAuthNotUsed' } });
  });

  it('reads a configured provider without gateway OAuth by its configured name', () => {
    expect(gatewayAnswer(GATEWAY, { type: 'gatewayOAuth.read', requestId: 'r1', modelProvider: 'plain' })).toEqual({
      ok: true,
      result: { ...OPENAI_READ, providerId: 'plain', providerName: 'Plain provider' },
    });
  });

  it('answers not implemented, naming the provider, for the selected gateway provider (out of scope)', () => {
    const answer = gatewayAnswer(GATEWAY, { type: 'gatewayOAuth.read', requestId: 'r1', modelProvider: null });
    expect(answer).toEqual({
      ok: false,
      failure: {
        kind: 'notImplemented',
        message: 'gateway OAuth sign-in (model provider "gw") is not implemented by this server: model providers are out of its scope',
      },
    });
    expect(gatewayAnswer(GATEWAY, { type: 'gatewayOAuth.login', requestId: 'r1', modelProvider: 'gw', deviceAuth: false })).toEqual(answer);
  });

  it('always answers a cancel with an empty object (§18.4)', () => {
    expect(gatewayAnswer(GATEWAY, { type: 'gatewayOAuth.cancel', requestId: 'r1' })).toEqual({ ok: true, result: {} });
    expect(gatewayAnswer(ONLY_OPENAI, { type: 'gatewayOAuth.cancel', requestId: 'r1' })).toEqual({ ok: true, result: {} });
  });
});
