import { beforeAll, describe, expect, it } from 'vitest';
import { fromCallback, fromPromise, type AnyStateMachine } from 'xstate';
import { accountMachine } from '../../machines/account-machine.js';
import type { AccountEvent, Policy, StoredAuth } from '../../machines/account-types.js';
import { serializeAuth } from '../../src/effects/storage.js';
import type { TraceLine } from '../../src/inspect/transition-trace.js';
import { EVENTS, FORCE_API, FORCE_CHATGPT, FORCE_WS_2, RAISED, SAMPLES, serializeState, type Snapshot } from '../machine/account-samples.js';
import { NO_POLICY } from '../machine/harness.js';
import { selfSigned } from '../helpers/tls.js';
import { ACCOUNT_DRIVERS, type Driver } from './account-driver.js';
import { coverage, formatCoverage } from './coverage.js';
import { EXCLUDED } from './exclusions.js';
import { generatePaths, type GeneratedPath, type GeneratedStep } from './generate.js';
import { Replay, sleep } from './replay.js';
import { inertSession, SESSION_DRIVERS, SESSION_EVENTS, SESSION_IDENTIFY, SESSION_STARTS, sessionPathAdmissible, startSession, type SessionEvent, type SessionStart } from './session-driver.js';
import { sessionMachine } from '../../machines/session-machine.js';
import { loginAttemptMachine, SUCCESS_PAGE_GRACE_MS } from '../../machines/login-attempt-machine.js';
import { ATTEMPT_DRIVERS, ATTEMPT_EVENTS, ATTEMPT_STARTS, attemptPathAdmissible, inertAttempt, startAttempt, type AttemptEvent, type AttemptStart } from './login-attempt-driver.js';
import { World } from './world.js';

// Every transition of every machine, on paths generated from the machine
// definitions with xstate/graph (test/replay/generate.ts) and replayed
// against the real server process (test/replay/replay.ts): each step is done
// in the real world by its driver, and the server's transition trace must
// show the transitions the step takes on the chart, in order.

const never = () => new Promise<never>(() => {});
const idle = fromCallback(() => () => {});

interface AccountStart {
  policy: Policy;
  /** `initialize` comes after stored ChatGPT credentials loaded (the session is running when the host names itself). */
  late: boolean;
}

const identify = SAMPLES['client.identify']![0]!;
const loadChatgpt = SAMPLES['xstate.done.actor.load']![2]!;

/** The root chart with inert effects and children: only the path's events move it. */
const inertAccount = accountMachine.provide({
  actors: {
    loadCredentials: fromPromise(never),
    saveCredentials: fromPromise(never),
    clearCredentials: fromPromise(never),
    session: idle,
    loginAttempt: idle,
  } as never,
});

/**
 * What the world can do, which the root chart cannot know: a login attempt
 * ends with a sign-in or a failure only once it was ready (its device code
 * given), and as not started only after its start failed.
 */
function accountPathAdmissible(steps: GeneratedStep<AccountEvent>[]): boolean {
  let attempt: 'none' | 'starting' | 'ready' | 'startFailed' = 'none';
  for (const { event } of steps) {
    if (event.type === 'login.chatgpt') attempt = 'starting';
    if (event.type === 'loginAttempt.ready') attempt = 'ready';
    if (event.type === 'loginAttempt.startFailed') attempt = 'startFailed';
    if ((event.type as string) === 'xstate.done.actor.attempt') {
      const { status } = (event as unknown as { output: { status: string } }).output;
      if (attempt !== (status === 'notStarted' ? 'startFailed' : 'ready')) return false;
    }
  }
  return true;
}

const contentOf = (auth: StoredAuth | null) => (auth === null ? null : serializeAuth(auth));

/** The pure-read transitions that answer at once: the adapter gives the same answer from the snapshot's view. */
const ANSWERED_FROM_VIEWS = ['account on account.read #1', 'account on account.read #4', 'account on authStatus.read #1'];

interface Suite<E, I> {
  machine: AnyStateMachine;
  paths: GeneratedPath<E, I>[];
  uncovered: string[];
  states: number;
  driverFor(type: string): Driver<E> | undefined;
  /** Starts the replay's server in the path's starting state (the path's events, for what they need set up). */
  start(r: Replay, input: I, events: E[]): Promise<void>;
  describe(input: I): string;
  /**
   * The notifications among emitted events (the chart's) or wire
   * notifications (`type` the method, then the params), in a form both give alike.
   */
  notifications?(events: Array<{ type: string } & Record<string, unknown>>): string[];
}

const isExcluded = (machine: string) => (key: string) => `${machine}: ${key}` in EXCLUDED;

function accountSuite(): Suite<AccountEvent, AccountStart> {
  const inputs: AccountStart[] = [
    ...[NO_POLICY, FORCE_API, FORCE_CHATGPT, FORCE_WS_2].map((policy) => ({ policy, late: false })),
    { policy: NO_POLICY, late: true },
  ];
  const generated = generatePaths<AccountEvent, AccountStart>({
    machine: inertAccount,
    declared: accountMachine,
    inputs,
    prefix: ({ late }) => (late ? [loadChatgpt, identify] : [identify]),
    events: EVENTS.filter((e) => e.type !== 'client.identify'),
    serializeState,
    distinctRequestIds: true,
    admissiblePathFor: accountPathAdmissible,
    // Another process's rewrite of what is stored already is no change to the store (src/effects/store.ts).
    admissible: (state, event) =>
      event.type !== 'credentials.reloaded' || contentOf(event.auth) !== contentOf((state as Snapshot).context.stored),
    // Pure reads the snapshot can answer: the adapter answers them from the chart's views.
    answeredOutside: (event, keys) => keys.length === 1 && ANSWERED_FROM_VIEWS.includes(keys[0]!),
    skip: (key) => RAISED.some((r) => key.includes(` on ${r} `)) || isExcluded('account')(key),
  });
  return {
    machine: accountMachine,
    ...generated,
    driverFor: (type) => ACCOUNT_DRIVERS[type],
    start: (r, { policy }) => r.start({ policy }),
    describe: ({ policy, late }) => `${JSON.stringify(policy)}${late ? ' late initialize' : ''}`,
    notifications: (events) =>
      events.flatMap((e) => {
        if (e.type === 'account.updated' || e.type === 'account/updated') return [`account/updated ${String(e.authMode)}`];
        if (e.type === 'login.completed' || e.type === 'account/login/completed') return [`account/login/completed ${e.success ? 'ok' : 'failed'}${e.loginId === null ? ' (no login id)' : ''}`];
        return [];
      }),
  };
}

function sessionSuite(): Suite<SessionEvent, SessionStart> {
  const generated = generatePaths<SessionEvent, SessionStart>({
    machine: inertSession,
    declared: sessionMachine,
    inputs: SESSION_STARTS,
    machineInput: (start) => start.input,
    prefix: ({ world }) => (world === 'storedThenInitialize' ? [SESSION_IDENTIFY] : []),
    events: SESSION_EVENTS,
    serializeState: serializeSession,
    admissiblePathFor: sessionPathAdmissible,
    skip: isExcluded('session'),
  });
  return {
    machine: sessionMachine,
    ...generated,
    driverFor: (type) => SESSION_DRIVERS[type.startsWith('xstate.done.actor.call.') ? 'xstate.done.actor.call.*' : type],
    start: startSession,
    describe: ({ input, world }) => `${input.mode}, ${world}`,
  };
}

function attemptSuite(): Suite<AttemptEvent, AttemptStart> {
  const generated = generatePaths<AttemptEvent, AttemptStart>({
    machine: inertAttempt,
    declared: loginAttemptMachine,
    inputs: ATTEMPT_STARTS,
    machineInput: (start) => start.input,
    events: ATTEMPT_EVENTS,
    serializeState: serializeAttempt,
    admissiblePathFor: attemptPathAdmissible,
    skip: isExcluded('loginAttempt'),
  });
  return {
    machine: loginAttemptMachine,
    ...generated,
    driverFor: (type) => ATTEMPT_DRIVERS[type],
    start: startAttempt,
    describe: ({ input }) => `${input.flow}${input.policy.forcedWorkspaceIds ? ', forced ws-1' : ''}`,
  };
}

/** Attempt states apart by value and what the chart remembers (whether, not what). */
function serializeAttempt(s: any): string {
  const c = s.context;
  return JSON.stringify([s.value, c.details !== null, c.grant !== null, c.pasteRequestId !== null, c.tokens !== null, c.apiKey !== null, c.auth !== null, c.error !== null]);
}

/**
 * Session states apart by value and what the chart keeps about work in flight
 * (counts capped, so that the graph is finite). The inert calls never end,
 * so "some call was made" is all the state says of them; which calls are in
 * flight is the admissibility check's business.
 */
function serializeSession(s: any): string {
  const c = s.context;
  const called = Object.keys(s.children).some((id) => id.startsWith('call.'));
  return JSON.stringify([s.value, Math.min(c.parked.length, 2), c.credentialsVersion > 0, c.discoveryRecovered, c.rediscover, c.refreshAfterDiscovery, c.lastFailure?.kind ?? null, called]);
}

const eventLabel = (e: { type: string }) => {
  const o = (e as { output?: { kind?: string; status?: string } | null }).output;
  return e.type + (o === null ? '(null)' : o?.kind ? `(${o.kind})` : o?.status ? `(${o.status})` : '');
};

const labelOf = <E extends { type: string }, I>(suite: Suite<E, I>, path: GeneratedPath<E, I>, i: number) =>
  `${suite.machine.id} path ${i + 1} [${suite.describe(path.input)}]: ${path.steps.map((s) => eventLabel(s.event)).join(' > ')}`;

let tls: ReturnType<typeof selfSigned>;
beforeAll(() => {
  tls = selfSigned();
});

const CONCURRENCY = 3;

async function replayAll<E extends { type: string }, I>(suite: Suite<E, I>): Promise<{ lines: TraceLine[]; errors: string[]; notified: number; replied: number }> {
  let notified = 0;
  let replied = 0;
  const lines: TraceLine[] = [];
  const errors: string[] = [];
  // REPLAY_PATH=<text> replays only the paths whose label contains it (to look at one closely).
  const only = process.env.REPLAY_PATH;
  const queue = suite.paths.map((path, i) => ({ path, i })).filter(({ path, i }) => !only || labelOf(suite, path, i).includes(only));
  const worker = async () => {
    for (let next = queue.shift(); next; next = queue.shift()) {
      const { path, i } = next;
      const label = labelOf(suite, path, i);
      const w = await World.start(tls);
      const r = new Replay(w);
      try {
        await suite.start(r, path.input, path.steps.map((s) => s.event));
        /** The request each step sent first (its own, for a request's step). */
        const own: unknown[] = [];
        for (const [n, step] of path.steps.entries()) {
          const sent = r.sent;
          const driver = suite.driverFor(step.event.type);
          if (!driver) throw new Error(`no driver for ${step.event.type}`);
          await driver(r, step.event, path.steps.slice(n + 1).map((s) => s.event), step.before);
          own.push(r.sent > sent ? r.requestId(sent) : undefined);
          // A delay of the chart's own (the 10 s success-page grace) runs in real time.
          const waits = step.event.type === `xstate.after.successPageGrace.loginAttempt.open.confirming` ? SUCCESS_PAGE_GRACE_MS + 5_000 : undefined;
          await r.expectKeys(suite.machine.id, step.keys, `step ${n + 1} (${eventLabel(step.event)})`, waits);
        }
        if (suite.notifications) {
          // What the chart emitted along the path is what the host was told, in order.
          const expected = suite.notifications(path.steps.flatMap((s) => s.emitted ?? []));
          const told = () => suite.notifications!(r.s.notifications().map((n) => ({ type: n.method!, ...n.params })));
          const deadline = Date.now() + 2_000;
          while (told().length < expected.length && Date.now() < deadline) await sleep(10);
          notified += expected.length;
          if (JSON.stringify(told()) !== JSON.stringify(expected)) {
            throw new Error(`the host was told\n  ${told().join('\n  ') || '(nothing)'}\nbut the chart emitted\n  ${expected.join('\n  ') || '(nothing)'}`);
          }
        }
        // Each answer the chart gave along the path, the host got: a result for a success, an error for a failure.
        for (const { step, ok } of path.replies) {
          const id = own[step];
          if (id === undefined) throw new Error(`step ${step + 1} sent no request, but the chart answered one`);
          const answer = await r.s.response(id, 3_000).catch(() => null);
          if (!answer) throw new Error(`step ${step + 1}'s request (${String(id)}) was not answered, but the chart answered it`);
          if ('result' in answer !== ok) {
            throw new Error(`step ${step + 1}'s request got ${JSON.stringify(answer)}, but the chart answered it with ${ok ? 'a success' : 'a failure'}`);
          }
          replied++;
        }
        await r.finish();
      } catch (error) {
        const message = (error as Error).message;
        errors.push(`${label}\n${message}${message.includes('stderr:') ? '' : `\nstderr:\n${r.s?.stderr.slice(-2500) ?? ''}`}`);
      } finally {
        lines.push(...w.allLines());
        await w.stop();
      }
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  return { lines, errors, notified, replied };
}

describe('generated paths replayed against the real server', () => {
  it.each([
    ['account', accountSuite],
    ['session', sessionSuite],
    ['loginAttempt', attemptSuite],
  ] as const)('should take every transition of the %s machine', { timeout: 240_000 }, async (_, make) => {
    const startedAt = Date.now();
    const suite = make() as Suite<{ type: string }, unknown>;
    const generatedIn = Date.now() - startedAt;
    expect(suite.uncovered, 'transitions no generated path takes, even on the chart').toEqual([]);
    const { lines, errors, notified, replied } = await replayAll(suite);
    const rows = coverage([suite.machine], lines, EXCLUDED);
    console.log(
      `\n${suite.machine.id}: ${suite.paths.length} paths generated from ${suite.states} states in ${generatedIn} ms, ` +
        `replayed in ${((Date.now() - startedAt - generatedIn) / 1000).toFixed(1)} s` +
        (suite.notifications ? `; ${replied} answers and ${notified} notifications as the chart gave them` : '') +
        `\n${formatCoverage(rows, Object.fromEntries(Object.entries(EXCLUDED).filter(([k]) => k.startsWith(`${suite.machine.id}: `))))}\n`,
    );
    expect(errors).toEqual([]);
    for (const row of rows) expect(row.missing).toEqual([]);
  });
});
