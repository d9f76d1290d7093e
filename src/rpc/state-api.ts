import type { Actor, Subscription } from 'xstate';
import type { AccountMachine } from '../../machines/account-machine.js';
import type { AccountEmitted, AuthFailure } from '../../machines/account-types.js';
import { viewState, type AccountSnapshot } from '../../machines/account-views.js';
import type { StoreInfo } from '../effects/store-info.js';
import { redact } from '../log.js';
import type { AccountState } from '../protocol/results.js';
import { accountStateResult, type StateExtras } from '../protocol/wire.js';
import { toResponseError } from './errors.js';

/**
 * `account/state/read` and `account/state/changed` (docs/state-api.md). The
 * view comes from the snapshot (`viewState`); this adds what a snapshot does
 * not hold, observed as it happens: when the pending login started and when
 * its deadline falls, and the last failure the statechart reported. It only
 * watches: the machine decides everything.
 */
export interface StateApi {
  /** Watches an account actor (called again for a replacement actor). */
  attach(actor: Actor<AccountMachine>): void;
  /** The state as a host sees it now. */
  read(snapshot: AccountSnapshot, experimentalApi: boolean): AccountState;
  /**
   * Calls `listener` with the state after changes: at most once per
   * event-loop turn, and only when it differs from what it last gave.
   */
  onChange(listener: (state: AccountState) => void, experimentalApi: boolean): void;
}

export interface StateApiOptions {
  now?: () => number;
  /** Which credential store is in use and why (the store backend's `describe()`). */
  store?: () => StoreInfo;
}

type LastError = NonNullable<StateExtras['lastError']>;

export function createStateApi(options: StateApiOptions = {}): StateApi {
  const now = options.now ?? Date.now;
  let actor: Actor<AccountMachine> | null = null;
  let login: StateExtras['login'] = null;
  let lastError: LastError | null = null;
  /** The failures already recorded, by identity: a snapshot keeps the same object until it changes. */
  let seenStorageIssue: AuthFailure | null = null;
  let seenRefreshFailure: AuthFailure | null = null;

  let listener: ((state: AccountState) => void) | null = null;
  let experimental = false;
  let lastSent = '';
  let scheduled = false;
  const children = new Map<string, Subscription>();

  /** `notification`: a failed sign-in's text as `account/login/completed` gave it (no error code went out). */
  const record = (source: LastError['source'], failure: AuthFailure, notification?: string) => {
    const error = toResponseError(failure);
    lastError = {
      source,
      code: notification === undefined ? error.code : null,
      message: redact(notification ?? error.message),
      reason: error.data!.reason,
      recovery: error.data!.recovery,
      at: now(),
    };
  };

  const extras = (): StateExtras => {
    let store: StoreInfo | null = null;
    try {
      store = options.store?.() ?? null;
    } catch {
      store = null;
    }
    return {
      login,
      lastError,
      store: store && { ...store, location: redact(store.location), problem: store.problem === null ? null : redact(store.problem) },
    };
  };

  const read = (snapshot: AccountSnapshot, experimentalApi: boolean) =>
    accountStateResult(viewState(snapshot, { experimentalApi }), extras());

  const flush = () => {
    scheduled = false;
    if (!listener || !actor) return;
    const state = read(actor.getSnapshot(), experimental);
    const json = JSON.stringify(state);
    if (json === lastSent) return;
    lastSent = json;
    listener(state);
  };
  const schedule = () => {
    if (!listener || scheduled) return;
    scheduled = true;
    setImmediate(flush);
  };

  /** The child machines' own changes (a login attempt exchanging its code) matter to the state too. */
  const watchChildren = (snapshot: AccountSnapshot) => {
    if (!listener) return;
    const running = snapshot.children as Record<string, { sessionId: string; subscribe?: Actor<AccountMachine>['subscribe'] } | undefined>;
    for (const id of ['session', 'attempt']) {
      const ref = running[id];
      const key = ref ? `${id}:${ref.sessionId}` : null;
      for (const [k, sub] of children) {
        if (k.startsWith(`${id}:`) && k !== key) {
          sub.unsubscribe();
          children.delete(k);
        }
      }
      if (ref && key && !children.has(key) && typeof ref.subscribe === 'function') {
        children.set(key, ref.subscribe({ next: schedule, error: () => {}, complete: () => {} }));
      }
    }
  };

  const observe = (snapshot: AccountSnapshot) => {
    const { context } = snapshot;
    const pending = context.pending;
    if (pending === null) login = null;
    else {
      if (login?.loginId !== pending.loginId) login = { loginId: pending.loginId, startedAt: now(), deadline: null };
      // The attempt's deadline (`after`, login-attempt-machine.ts) runs from the moment it is ready.
      if (login.deadline === null && snapshot.matches({ login: { chatgptPending: 'waiting' } })) {
        login = { ...login, deadline: now() + context.loginTimeoutMs };
      }
    }
    if (context.storageIssue !== seenStorageIssue) {
      seenStorageIssue = context.storageIssue;
      if (seenStorageIssue) record('storage', seenStorageIssue);
    }
    const session = (snapshot.children as Record<string, { getSnapshot(): { context?: { lastFailure?: AuthFailure | null } } } | undefined>).session;
    const refreshFailure = session?.getSnapshot().context?.lastFailure ?? null;
    if (refreshFailure !== seenRefreshFailure) {
      seenRefreshFailure = refreshFailure;
      if (refreshFailure) record('refresh', refreshFailure);
    }
    watchChildren(snapshot);
    schedule();
  };

  const onEmitted = (emitted: AccountEmitted) => {
    if (emitted.type === 'reply' && !emitted.ok) record('request', emitted.failure);
    else if (emitted.type === 'login.completed' && !emitted.success) {
      // A notification, not an error response: no code; its text as the notification gave it.
      record('login', { kind: 'loginFailed' }, emitted.error ?? 'Login failed');
    } else return;
    schedule();
  };

  return {
    attach(next) {
      for (const sub of children.values()) sub.unsubscribe();
      children.clear();
      actor = next;
      next.on('*', onEmitted);
      next.subscribe({ next: observe, error: () => {}, complete: () => {} });
      observe(next.getSnapshot());
    },
    read,
    onChange(next, experimentalApi) {
      listener = next;
      experimental = experimentalApi;
      if (actor) {
        lastSent = JSON.stringify(read(actor.getSnapshot(), experimental));
        watchChildren(actor.getSnapshot());
      }
    },
  };
}
