import { fc, test } from '@fast-check/vitest';
import { createActor, fromPromise } from 'xstate';
import { describe, expect, it } from 'vitest';
import { accountMachine } from '../../machines/account-machine.js';
import type { StoredAuth } from '../../machines/account-types.js';
import { Secret } from '../../machines/secret.js';
import { createRedactor, REDACTED } from '../../src/inspect/redact.js';

/** A Secret as a second bundle would build it: same shape, another class. */
class ForeignSecret {
  readonly #v: string;
  constructor(v: string) {
    this.#v = v;
  }
  reveal() {
    return this.#v;
  }
  toJSON() {
    return '[redacted]';
  }
}

describe('createRedactor', () => {
  it('replaces Secret instances anywhere, including ones from another copy of the class', () => {
    const r = createRedactor();
    expect(r.redact({ a: [new Secret('s3cr3t-value')], b: { c: new ForeignSecret('other-s3cret') } })).toEqual({
      a: [REDACTED],
      b: { c: REDACTED },
    });
  });

  it('replaces string and object values of secret-bearing keys but keeps flags and nulls', () => {
    const r = createRedactor();
    expect(
      r.redact({
        access_token: 'at',
        refreshToken: 'rt',
        code: 'auth-code',
        code_verifier: 'v',
        state: 'oauth-state',
        userCode: 'ABCD-EFGH',
        tokens: { id_token: 'x' },
        includeToken: true,
        apiKey: null,
        requestId: 'r-1',
      }),
    ).toEqual({
      access_token: REDACTED,
      refreshToken: REDACTED,
      code: REDACTED,
      code_verifier: REDACTED,
      state: REDACTED,
      userCode: REDACTED,
      tokens: REDACTED,
      includeToken: true,
      apiKey: null,
      requestId: 'r-1',
    });
  });

  it('masks a secret value it met before wherever it shows up again in plain text', () => {
    const r = createRedactor();
    r.redact({ key: new Secret('plain-looking-secret') });
    r.redact({ verifier: 'another-plain-secret' });
    expect(r.redact({ message: 'failed for plain-looking-secret and another-plain-secret' })).toEqual({
      message: `failed for ${REDACTED} and ${REDACTED}`,
    });
  });

  it('masks text that looks like a credential under any key', () => {
    const r = createRedactor();
    const out = JSON.stringify(r.redact({ note: 'Bearer abc.def sk-proj-123456 eyJhbGciOi.eyJzdWIiOiIxIn0.c2ln' }));
    expect(out).not.toMatch(/abc\.def|sk-proj|eyJ/);
  });

  it('walks an XState snapshot as JSON sees it and turns actor refs into ids', async () => {
    const stored: StoredAuth = {
      kind: 'chatgpt',
      idToken: new Secret('id-token-from-disk-1'),
      accessToken: new Secret('access-token-from-disk-2'),
      refreshToken: new Secret('refresh-token-from-disk-3'),
      accountId: 'ws-1',
      apiKey: new Secret('sk-from-disk-1'),
      claims: { email: 'a@b.c', userId: 'user-1', accountId: 'ws-1', planType: 'pro' },
      lastRefresh: null,
    };
    const actor = createActor(
      accountMachine.provide({ actors: { loadCredentials: fromPromise<StoredAuth | null, void>(async () => stored) } }),
      { input: { policy: { forcedLoginMethod: null, forcedWorkspaceIds: null } } },
    ).start();
    await new Promise((resolve) => setTimeout(resolve, 10));
    const out = createRedactor().redact(actor.getSnapshot()) as Record<string, any>;
    expect(out.value).toEqual({ credentials: { chatgptSession: 'chatgpt' }, login: 'idle' });
    expect(out.context.stored).toMatchObject({ kind: 'chatgpt', accessToken: REDACTED, refreshToken: REDACTED, apiKey: REDACTED });
    // The session child is a ref in the snapshot: only its ids go out, never its context.
    const session = actor.getSnapshot().children.session!;
    expect(out.children.session).toEqual({ actor: session.sessionId, id: 'session' });
    expect(out).not.toHaveProperty('machine');
    expect(JSON.stringify(out)).not.toMatch(/from-disk/);
    expect(createRedactor().redact({ ref: actor })).toEqual({ ref: { actor: actor.sessionId, id: actor.id } });
    actor.stop();
  });

  it('survives cycles and very deep values', () => {
    const a: Record<string, unknown> = { name: 'a' };
    a.self = a;
    let deep: Record<string, unknown> = {};
    const root = deep;
    for (let i = 0; i < 50; i++) deep = deep.next = {};
    const out = createRedactor().redact({ a, root }) as any;
    expect(out.a.self).toBe('[circular]');
    expect(JSON.stringify(out)).toContain('[…]');
  });

  test.prop([
    fc.string({ minLength: 8, maxLength: 40 }).filter((s) => s.trim() === s && !s.includes('[redacted]')),
    fc.constantFrom('apiKey', 'access_token', 'idToken', 'refresh_token', 'code', 'codeVerifier', 'state', 'clientSecret'),
    fc.array(fc.constantFrom('a', 'b', 'context', 'event', 'output'), { maxLength: 4 }),
  ])('never lets a secret under a secret key, or as a Secret, through; nor its echo in text', (secret, key, path) => {
    const r = createRedactor();
    const nest = (leaf: unknown) => path.reduceRight<unknown>((inner, k) => ({ [k]: inner }), leaf);
    const outputs = [
      r.redact(nest({ [key]: secret })),
      r.redact(nest({ holder: new Secret(secret) })),
      r.redact({ error: `request failed: ${secret}`, list: [secret] }),
    ];
    for (const out of outputs) expect(JSON.stringify(out)).not.toContain(JSON.stringify(secret).slice(1, -1));
  });
});
