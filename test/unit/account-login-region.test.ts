import { createActor, fromCallback, fromPromise } from 'xstate';
import { describe, expect, it } from 'vitest';
import { accountMachine } from '../../machines/account-machine.js';
import type { StoredAuth } from '../../machines/account-types.js';
import { loginAttemptMachine } from '../../machines/login-attempt-machine.js';
import { Secret } from '../../machines/secret.js';

const POLICY = { forcedLoginMethod: null, forcedWorkspaceIds: null };
const tick = () => new Promise((resolve) => setTimeout(resolve, 10));

/**
 * Found through `account/state/read`: a ChatGPT login used to re-enter the whole
 * parallel root (`reenter: true` on the `login` region), so the credentials
 * region went back to `loading` and read the store again on every start.
 * Only the boundary is faked: the store and the attempt's channel.
 */
describe('the login region of the account machine', () => {
  it('starts and restarts a ChatGPT login without re-entering the credentials region', async () => {
    let loads = 0;
    let channels = 0;
    const attempt = loginAttemptMachine.provide({
      actors: {
        openChannel: fromCallback(({ sendBack }) => {
          channels++;
          sendBack({ type: 'channel.ready', details: { flow: 'browser', authUrl: new Secret('http://127.0.0.1:9/authorize') } });
        }),
      },
    });
    const machine = accountMachine.provide({
      actors: {
        loadCredentials: fromPromise<StoredAuth | null, void>(async () => {
          loads++;
          return null;
        }),
        loginAttempt: attempt,
      },
    });
    const actor = createActor(machine, { input: { policy: POLICY } }).start();
    await tick();
    const credentials: unknown[] = [];
    actor.subscribe((s) => credentials.push((s.value as { credentials: unknown }).credentials));

    actor.send({ type: 'login.chatgpt', requestId: 'a', flow: 'browser', loginId: 'login-1' });
    await tick();
    const first = actor.getSnapshot().children.attempt;
    actor.send({ type: 'login.chatgpt', requestId: 'b', flow: 'browser', loginId: 'login-2' });
    await tick();

    expect(actor.getSnapshot().value).toEqual({ credentials: 'loggedOut', login: { chatgptPending: 'waiting' } });
    expect(actor.getSnapshot().children.attempt).not.toBe(first);
    expect(channels).toBe(2);
    expect(loads).toBe(1);
    expect(new Set(credentials)).toEqual(new Set(['loggedOut']));
    actor.stop();
  });
});
