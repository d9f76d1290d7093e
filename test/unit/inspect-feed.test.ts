import { createActor, fromPromise } from 'xstate';
import { describe, expect, it } from 'vitest';
import { accountMachine, type ClearCredentialsInput } from '../../machines/account-machine.js';
import type { StoredAuth } from '../../machines/account-types.js';
import { Secret } from '../../machines/secret.js';
import { activeStatePaths, createInspectFeed, type FeedItem } from '../../src/inspect/feed.js';
import { createRedactor } from '../../src/inspect/redact.js';

const POLICY = { forcedLoginMethod: null, forcedWorkspaceIds: null };
const tick = (ms = 80) => new Promise((resolve) => setTimeout(resolve, ms));

const STORED_CHATGPT: StoredAuth = {
  kind: 'chatgpt',
  idToken: new Secret('id-token-feed-unit-0001'),
  accessToken: new Secret('access-token-feed-unit-0002'),
  refreshToken: new Secret('refresh-token-feed-unit-0003'),
  accountId: 'ws-1',
  apiKey: null,
  claims: { email: 'a@b.c', userId: 'user-1', accountId: 'ws-1', planType: 'pro' },
  lastRefresh: null,
};

async function watched(stored: StoredAuth | null = null) {
  const feed = createInspectFeed(createRedactor());
  const machine = accountMachine.provide({
    actors: {
      loadCredentials: fromPromise<StoredAuth | null, void>(async () => stored),
      saveCredentials: fromPromise<StoredAuth, { auth: StoredAuth }>(async ({ input }) => input.auth),
      clearCredentials: fromPromise<void, ClearCredentialsInput>(async () => {}),
    },
  });
  const actor = createActor(machine, { input: { policy: POLICY }, inspect: feed.inspect }).start();
  await tick(10);
  return { feed, actor };
}

describe('activeStatePaths', () => {
  it('lists regions, compound states and leaves of a nested parallel value', () => {
    expect(activeStatePaths({ credentials: { chatgptSession: 'chatgpt' }, login: { chatgptPending: 'waiting' } })).toEqual([
      'credentials',
      'credentials.chatgptSession',
      'credentials.chatgptSession.chatgpt',
      'login',
      'login.chatgptPending',
      'login.chatgptPending.waiting',
    ]);
  });

  it('gives one path for a flat value and none for what is no state value', () => {
    expect(activeStatePaths('ready')).toEqual(['ready']);
    expect(activeStatePaths(undefined)).toEqual([]);
    expect(activeStatePaths(42)).toEqual([]);
  });
});

describe('createInspectFeed', () => {
  it('gives a connecting client the root state and its redacted context', async () => {
    const { feed, actor } = await watched();
    actor.send({ type: 'login.apiKey', requestId: '1', apiKey: new Secret('sk-feed-unit-000111') });
    await tick(10);
    const init = feed.initial();
    expect(init.message).toMatchObject({ type: 'init' });
    // The root, plus its long-lived children (the credentials watch), whose machine is unnamed.
    expect((init.message as any).actors.filter((a: any) => a.machine === 'account')).toMatchObject([
      { machine: 'account', value: { credentials: 'apiKey', login: 'idle' }, context: { stored: { apiKey: '[redacted]' } } },
    ]);
    expect(init.json).not.toContain('sk-feed-unit-000111');
    actor.stop();
  });

  it('sends a snapshot only when the state changed, batched', async () => {
    const { feed, actor } = await watched();
    const batches: FeedItem[][] = [];
    feed.subscribe((items) => batches.push(items));
    feed.initial();
    for (let i = 0; i < 50; i++) actor.send({ type: 'account.read', requestId: `r${i}`, refreshToken: false });
    await tick();
    const snapshots = batches.flat().filter((i) => i.message.type === 'snapshot' && i.message.snapshot.machine === 'account');
    expect(snapshots).toEqual([]);
    actor.send({ type: 'login.apiKey', requestId: 'k', apiKey: new Secret('sk-feed-unit-222333') });
    await tick();
    const after = batches.flat().filter((i) => i.message.type === 'snapshot' && i.message.snapshot.machine === 'account');
    expect(after.map((i) => (i.message as any).snapshot.value)).toEqual([{ credentials: 'apiKey', login: 'idle' }]);
    actor.stop();
  });

  it('names every active state node of the parallel root as the SVG ids do', async () => {
    const { feed, actor } = await watched();
    actor.send({ type: 'login.apiKey', requestId: '1', apiKey: new Secret('sk-feed-unit-444555') });
    await tick(10);
    const root = (feed.initial().message as any).actors.find((a: any) => a.parent === null);
    expect(root.active).toEqual(['account:credentials', 'account:credentials.apiKey', 'account:login', 'account:login.idle']);
    actor.stop();
  });

  it('shows the session child with its own active states and redacted context', async () => {
    const { feed, actor } = await watched(STORED_CHATGPT);
    const init = feed.initial();
    const actors = (init.message as any).actors;
    expect(actors.find((a: any) => a.parent === null).active).toContain('account:credentials.chatgptSession.chatgpt');
    const session = actors.find((a: any) => a.machine === 'session');
    expect(session).toMatchObject({ id: 'session', status: 'active', value: 'ready', active: ['session:ready'] });
    expect(session.parent).toBe(actor.sessionId);
    expect(session.context.accessToken).toBe('[redacted]');
    expect(init.json).not.toMatch(/token-feed-unit/);
    actor.stop();
  });

  it('sends a stopped child its last snapshot, then forgets it', async () => {
    const { feed, actor } = await watched(STORED_CHATGPT);
    const messages: any[] = [];
    feed.subscribe((items) => messages.push(...items.map((i) => i.message)));
    feed.initial();
    actor.send({ type: 'logout', requestId: 'out' });
    await tick();
    const session = messages.filter((m) => m.type === 'snapshot' && m.snapshot.machine === 'session');
    expect(session.at(-1).snapshot.status).toBe('stopped');
    // The session is gone; what stays is the root (and its watch, which has no machine).
    expect((feed.initial().message as any).actors.map((a: any) => a.machine).filter(Boolean)).toEqual(['account']);
    actor.stop();
  });

  it('skips log rows beyond its per-batch limit and says how many', async () => {
    const { feed, actor } = await watched();
    const rows: any[] = [];
    feed.subscribe((items) => rows.push(...items.map((i) => i.message)));
    for (let i = 0; i < 500; i++) feed.rpc({ dir: 'in', kind: 'request', method: 'account/read', id: String(i) });
    await tick();
    const logs = rows.filter((m) => m.type === 'log');
    expect(logs).toHaveLength(101);
    expect(logs[0].entry).toMatchObject({ kind: 'note', text: '400 log rows skipped (more than 100 in 50 ms)' });
    expect(logs.at(-1).entry.rpc.id).toBe('499');
    actor.stop();
  });
});
