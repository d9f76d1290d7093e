import { createActor, fromPromise } from 'xstate';
import { describe, expect, it } from 'vitest';
import { accountMachine } from '../../machines/account-machine.js';
import type { StoredAuth } from '../../machines/account-types.js';
import { Secret } from '../../machines/secret.js';
import { createInspectFeed, type FeedItem } from '../../src/inspect/feed.js';
import { createRedactor } from '../../src/inspect/redact.js';

const POLICY = { forcedLoginMethod: null, forcedWorkspaceIds: null };
const tick = (ms = 80) => new Promise((resolve) => setTimeout(resolve, ms));

async function watched() {
  const feed = createInspectFeed(createRedactor());
  const machine = accountMachine.provide({
    actors: {
      loadCredentials: fromPromise<StoredAuth | null, void>(async () => null),
      saveCredentials: fromPromise<StoredAuth, { auth: StoredAuth }>(async ({ input }) => input.auth),
    },
  });
  const actor = createActor(machine, { input: { policy: POLICY }, inspect: feed.inspect }).start();
  await tick(10);
  return { feed, actor };
}

describe('createInspectFeed', () => {
  it('gives a connecting client the root state and its redacted context', async () => {
    const { feed, actor } = await watched();
    actor.send({ type: 'login.apiKey', requestId: '1', apiKey: new Secret('sk-feed-unit-000111') });
    await tick(10);
    const init = feed.initial();
    expect(init.message).toMatchObject({ type: 'init', actors: [{ machine: 'account', value: 'apiKey', context: { stored: { apiKey: '[redacted]' } } }] });
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
    expect(after.map((i) => (i.message as any).snapshot.value)).toEqual(['apiKey']);
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
