import { vi } from 'vitest';
import { createActor, setup, type SimulatedClock } from 'xstate';
import type { StoredAuth, StoredChatgpt } from '../../machines/account-types.js';
import { loginAttemptMachine } from '../../machines/login-attempt-machine.js';
import type { LoginAttemptCommand, LoginAttemptInput, LoginAttemptOutput, LoginAttemptReport } from '../../machines/login-attempt-types.js';
import { createLoginActors, type LoginDeps } from '../../src/effects/login/actors.js';
import { createLogger } from '../../src/log.js';
import type { Issuer } from './issuer.js';

/** Log lines of the effects, to check no secret reached them. */
export function captureLog() {
  const lines: string[] = [];
  return { lines, log: createLogger('debug', (line) => lines.push(line)) };
}

/**
 * The credential-store boundary: records what a login would save, or fails
 * like a full disk. The only fake in the login tests.
 */
export function recordingStore(fails = false) {
  const saved: StoredChatgpt[] = [];
  return {
    saved,
    save: async (auth: StoredChatgpt): Promise<StoredAuth> => {
      if (fails) throw { kind: 'storageFailed', message: 'failed to save credentials: ENOSPC: no space left on device' };
      saved.push(auth);
      return auth;
    },
  };
}

/** Real effects against the issuer stand-in, on an OS-assigned callback port unless told otherwise. */
export function loginDeps(issuer: Issuer, overrides: Partial<LoginDeps> = {}) {
  const store = recordingStore();
  const { lines, log } = captureLog();
  const deps: LoginDeps = {
    fetch: (input, init) => fetch(input, init),
    issuer: issuer.origin,
    ports: [0],
    timeoutMs: 2_000,
    log,
    saveCredentials: (auth) => store.save(auth),
    ...overrides,
  };
  return { deps, store, logs: lines };
}

export const POLICY = { forcedLoginMethod: null, forcedWorkspaceIds: null } as const;

/**
 * A login attempt run as the child of a minimal parent that records what the
 * attempt tells it, as the account machine will. The attempt is the real
 * machine with the real effects; `clock` drives its `after` delays.
 */
export function startAttempt(deps: LoginDeps, input: Partial<LoginAttemptInput> = {}, clock?: SimulatedClock) {
  const reports: LoginAttemptReport[] = [];
  let output: LoginAttemptOutput | null = null;
  const attempt = loginAttemptMachine.provide({ actors: createLoginActors(deps) });
  const full: LoginAttemptInput = {
    loginId: '11111111-2222-4333-8444-555555555555',
    flow: 'browser',
    policy: POLICY,
    client: { originator: 'my-app', userAgent: 'my-app/0.169.0 (test)' },
    deadlineMs: 600_000,
    ...input,
  };
  const parent = setup({ types: { events: {} as LoginAttemptReport }, actors: { attempt } }).createMachine({
    invoke: {
      id: 'attempt',
      src: 'attempt',
      input: full,
      onDone: { actions: ({ event }) => (output = event.output as LoginAttemptOutput) },
    },
    on: { '*': { actions: ({ event }) => reports.push(event) } },
  });
  const actor = createActor(parent, clock ? { clock } : {}).start();
  const child = () => actor.getSnapshot().children.attempt;
  return {
    actor,
    reports,
    input: full,
    get output() {
      return output;
    },
    send: (event: LoginAttemptCommand) => child()?.send(event),
    /** The attempt's state value, e.g. `{ open: { running: 'waiting' } }`. */
    state: () => child()?.getSnapshot().value,
    snapshotJson: () => JSON.stringify(child()?.getSnapshot() ?? null),
    ready: () =>
      vi.waitFor(
        () => {
          const r = reports.find((e) => e.type === 'loginAttempt.ready' || e.type === 'loginAttempt.startFailed');
          if (!r) throw new Error('not ready yet');
          return r;
        },
        { timeout: 8_000, interval: 5 },
      ),
    finished: () =>
      vi.waitFor(
        () => {
          if (output === null) throw new Error('still running');
          return output;
        },
        { timeout: 8_000, interval: 5 },
      ),
    pasteAnswer: (requestId: string) =>
      vi.waitFor(
        () => {
          const r = reports.find((e) => e.type === 'loginAttempt.pasteAnswered' && e.requestId === requestId);
          if (!r) throw new Error('no answer yet');
          return r as Extract<LoginAttemptReport, { type: 'loginAttempt.pasteAnswered' }>;
        },
        { timeout: 8_000, interval: 5 },
      ),
    stop: () => actor.stop(),
  };
}

/** The auth URL of a ready browser attempt. */
export function authUrlOf(report: LoginAttemptReport): string {
  if (report.type !== 'loginAttempt.ready' || report.details.flow !== 'browser') throw new Error(`not a ready browser login: ${JSON.stringify(report)}`);
  return report.details.authUrl.reveal();
}

/** The user code of a ready device attempt. */
export function userCodeOf(report: LoginAttemptReport): string {
  if (report.type !== 'loginAttempt.ready' || report.details.flow !== 'device') throw new Error(`not a ready device login: ${JSON.stringify(report)}`);
  return report.details.userCode.reveal();
}

/** Fails when any secret the issuer handed out shows up in `texts`. */
export function leakedSecrets(issuer: Issuer, texts: string[]): string[] {
  const all = texts.join('\n');
  return [...issuer.secrets].filter((s) => s.length >= 8 && all.includes(s));
}
