import { createActor, initialTransition, transition, type AnyStateMachine, type EventObject } from 'xstate';
import { getShortestPaths } from 'xstate/graph';
import { candidateIndex, traceLinesOf, type TransitionShape } from '../../src/inspect/transition-trace.js';
import { keyOf, transitionsOf } from './coverage.js';

/**
 * Paths generated from a machine definition with `xstate/graph`, one set per
 * machine, that together take every transition it declares (docs/proof.md).
 *
 * `getShortestPaths` gives the shortest event sequence to every distinct
 * state (as `serializeState` tells them apart); a path is that sequence plus
 * one more sample event that takes a transition no chosen path has taken
 * yet. Each candidate is run on a live actor of the same chart (its effects
 * and children inert, so only its own events move it) to learn every
 * transition of every step, eventless and raised ones included, in the
 * names the server's transition trace uses. Paths whose transitions others
 * take as well are dropped.
 */
export interface GeneratedStep<E> {
  event: E;
  /** The transitions of the machine this step takes, in order (`keyOf` names). */
  keys: string[];
  /** The chart's snapshot before the step (a driver may need its context). */
  before?: { context: any; value: unknown };
  /** What the chart emits in this step (replies to requests left out). */
  emitted?: Array<{ type: string } & Record<string, unknown>>;
}

export interface GeneratedPath<E, I> {
  /** Which input (policy, mode) the path starts from. */
  input: I;
  steps: GeneratedStep<E>[];
  /** The chart's answers to the path's requests: which step's request, and whether it succeeded. */
  replies: Array<{ step: number; ok: boolean }>;
}

export interface GenerateOptions<E extends EventObject, I> {
  /** The chart with inert effects and children (same state and transition ids as the real one). */
  machine: AnyStateMachine;
  /** The real machine, whose declared transitions must be covered. */
  declared: AnyStateMachine;
  inputs: I[];
  /** The machine's input for a path's input (default: the same). */
  machineInput?: (input: I) => unknown;
  /** Events every path starts with (what the world always does first), per input. */
  prefix?: (input: I) => E[];
  events: E[];
  serializeState: (snapshot: any) => string;
  /**
   * Steps the real server answers without the chart: a pure read whose answer
   * the snapshot already holds is answered from the chart's own view of it
   * (src/rpc/server.ts), so its transition shows in no trace. Such a step
   * takes nothing here either; its transitions need another path (a read
   * that waited for the load, say).
   */
  answeredOutside?: (event: E, keys: string[]) => boolean;
  /**
   * Whether the real world can cause the whole sequence (what it depends on
   * lies outside the chart: the parent's view, calls in flight). Candidates
   * it refuses are not chosen.
   */
  admissiblePathFor?: (steps: GeneratedStep<E>[], input: I) => boolean;
  /**
   * Gives each step's request an id of its own (`step-<n>`) on the live actor,
   * so the chart's replies tell which request they answer (the sample events
   * share one id). Only for charts whose request ids mean nothing else.
   */
  distinctRequestIds?: boolean;
  /** Whether the real world can cause `event` when the chart is in `state` (default: always). */
  admissible?: (state: any, event: E) => boolean;
  /** Transitions not to look for (raised ones, justified exclusions). */
  skip?: (key: string) => boolean;
}

export interface Generated<E, I> {
  paths: GeneratedPath<E, I>[];
  /** Declared transitions no generated path takes. */
  uncovered: string[];
  /** Distinct states explored, over all inputs. */
  states: number;
}

/** The transitions of `machine` each step of `events` takes on a live actor. */
export function stepKeys<E extends EventObject>(
  machine: AnyStateMachine,
  input: unknown,
  events: E[],
  answeredOutside: (event: E, keys: string[]) => boolean = () => false,
  befores: Array<{ context: any; value: unknown }> = [],
  emitted: Array<Array<{ type: string } & Record<string, unknown>>> = [],
  replies?: Array<{ step: number; ok: boolean }>,
): string[][] {
  const current: string[] = [];
  const actor = createActor(machine, {
    input,
    inspect: (e) => {
      for (const line of traceLinesOf(e)) if (line.machine === machine.id) current.push(keyOf(line));
    },
  });
  // An error event no state handles stops the actor with that error: the steps after it take nothing.
  actor.subscribe({ error: () => {} });
  let emits: Array<{ type: string } & Record<string, unknown>> = [];
  actor.on('*', (e: { type: string; requestId?: string; ok?: boolean }) => {
    if (e.type !== 'reply') emits.push(e as never);
    else if (replies && e.requestId?.startsWith('step-')) replies.push({ step: Number(e.requestId.slice(5)), ok: e.ok === true });
  });
  actor.start();
  // What the chart takes as it starts (eventless transitions) belongs to the first step.
  const initial = [...current];
  const out = events.map((event, i) => {
    befores.push({ context: actor.getSnapshot().context, value: actor.getSnapshot().value });
    current.length = 0;
    emits = [];
    const own = replies && 'requestId' in event && event.type !== 'session.answered';
    actor.send(own ? { ...event, requestId: `step-${i}` } : event);
    const keys = answeredOutside(event, current) ? [] : [...current];
    emitted.push(emits);
    return i === 0 ? [...initial, ...keys] : keys;
  });
  actor.stop();
  return out;
}

/** The key of a transition definition, as the trace names it. */
const definitionKey = (t: Pick<TransitionShape, 'source' | 'eventType'>) => keyOf({ source: t.source.id, on: t.eventType, index: candidateIndex(t) });

export function generatePaths<E extends EventObject, I>(options: GenerateOptions<E, I>): Generated<E, I> {
  // xstate/graph runs actions with a mock actor scope whose children never start, so every
  // `sendTo` a child warns "sent to stopped actor"; those warnings say nothing about the chart.
  const warn = console.warn;
  console.warn = (...args: unknown[]) => {
    if (!String(args[0]).includes('was sent to stopped actor')) warn(...args);
  };
  try {
    return generate(options);
  } finally {
    console.warn = warn;
  }
}

function generate<E extends EventObject, I>(options: GenerateOptions<E, I>): Generated<E, I> {
  const { machine, declared, inputs, serializeState, prefix = () => [], skip = () => false, answeredOutside, admissible = () => true, admissiblePathFor = () => true, machineInput = (i: I) => i } = options;
  const eventsIn = (state: any) => options.events.filter((e) => admissible(state, e));
  const wanted = new Set(transitionsOf(declared).map((t) => t.key).filter((k) => !skip(k)));
  const covered = new Set<string>();
  const chosen: Array<GeneratedPath<E, I> & { all: Set<string> }> = [];
  let states = 0;

  /** Chooses the path if the world can cause it and it takes something new; `'inadmissible'` if the world cannot. */
  const choose = (input: I, events: E[], extend = true): boolean | 'inadmissible' => {
    const befores: Array<{ context: any; value: unknown }> = [];
    const emitted: Array<Array<{ type: string } & Record<string, unknown>>> = [];
    const replies: Array<{ step: number; ok: boolean }> = [];
    const keys = stepKeys(machine, machineInput(input), events, answeredOutside, befores, emitted, options.distinctRequestIds ? replies : undefined);
    const newly = keys.flat().filter((k) => wanted.has(k) && !covered.has(k));
    const steps = events.map((event, i) => ({ event, keys: keys[i]!, before: befores[i]!, emitted: emitted[i]! }));
    if (!admissiblePathFor(steps, input)) {
      // A path the world cannot end there (a forwarded paste comes back at once) may end one step later.
      if (extend && options.events.some((next) => choose(input, [...events, next], false) === true)) return true;
      return 'inadmissible';
    }
    if (newly.length === 0) return false;
    const all = new Set(keys.flat());
    for (const k of all) covered.add(k);
    chosen.push({ input, steps, replies, all });
    return true;
  };

  // The states each input reaches, each with its shortest path (the prefix first).
  const explored = inputs.map((input) => {
    const start = prefix(input);
    const given = machineInput(input);
    // The prefix, taken on the pure transition function (what getShortestPaths explores from).
    let [fromState] = initialTransition(machine, given as never);
    for (const event of start) [fromState] = transition(machine, fromState, event as never);
    const reached = getShortestPaths(machine, { events: eventsIn, input: given, fromState, serializeState } as never) as Array<{
      state: any;
      steps: Array<{ event: E }>;
    }>;
    reached.sort((a, b) => a.steps.length - b.steps.length);
    states += reached.length;
    return reached.map((p) => ({ input, state: p.state, events: [...start, ...p.steps.map((s) => s.event).filter((e) => e.type !== 'xstate.init')] }));
  });
  const uncovered = () => [...wanted].filter((k) => !covered.has(k));

  // A prefix alone takes transitions of its own (the chart's first steps).
  for (const [i, input] of inputs.entries()) if (prefix(input).length > 0) choose(input, explored[i]![0]!.events);
  // First pass: the event's own transitions, read from the definition (cheap): each sample is
  // tried once per transition it takes (its payload may lead on to other, eventless ones).
  const tried = new Set<string>();
  for (const { input, state, events } of explored.flat()) {
    for (const event of eventsIn(state)) {
      const first = machine.getTransitionData(state, event).map(definitionKey).filter((k) => wanted.has(k));
      const fresh = first.filter((k) => !covered.has(k) || !tried.has(`${k} ${options.events.indexOf(event)}`));
      if (fresh.length === 0) continue;
      if (choose(input, [...events, event]) !== 'inadmissible') for (const k of fresh) tried.add(`${k} ${options.events.indexOf(event)}`);
    }
  }
  // Second pass: eventless and raised transitions show only when a step runs (smallest graphs first).
  if (process.env.REPLAY_DEBUG) console.log(`after the first pass: ${uncovered().join(', ') || 'nothing'} uncovered`);
  // Only events that can lead to an uncovered eventless transition are tried: ones that enter its
  // state, or stay in it (after a transition without a target, the state's `always` runs again).
  const alwaysSources = new Set(uncovered().filter((k) => k.includes(' on always #')).map((k) => k.split(' on ')[0]));
  const onlyAlways = uncovered().every((k) => k.includes(' on always #'));
  const leadsOn = (state: any, event: E) =>
    machine.getTransitionData(state, event).some((t: any) =>
      t.target?.length ? t.target.some((n: { id: string }) => alwaysSources.has(n.id)) : state._nodes.some((n: { id: string }) => alwaysSources.has(n.id)),
    );
  for (const reached of [...explored].sort((a, b) => a.length - b.length)) {
    for (const { input, state, events } of reached) {
      for (const event of eventsIn(state)) {
        if (uncovered().length === 0) break;
        if (machine.getTransitionData(state, event).length === 0) continue;
        if (onlyAlways && !leadsOn(state, event)) continue;
        choose(input, [...events, event]);
      }
    }
  }

  // Drop paths whose transitions the others take too (shortest first).
  const kept = [...chosen];
  for (const path of [...chosen].sort((a, b) => a.steps.length - b.steps.length)) {
    const others = kept.filter((p) => p !== path);
    const elsewhere = new Set(others.flatMap((p) => [...p.all]));
    if ([...path.all].every((k) => !wanted.has(k) || elsewhere.has(k))) kept.splice(kept.indexOf(path), 1);
  }
  return {
    paths: kept.map(({ all: _all, ...p }) => p),
    uncovered: uncovered(),
    states,
  };
}
