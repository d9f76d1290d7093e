import { closeSync, openSync, writeSync } from 'node:fs';
import type { InspectionEvent } from 'xstate';
import type { InspectSink } from './types.js';

/**
 * One transition a machine took, as `CODEX_ACCOUNT_SERVER_TRACE_TRANSITIONS`
 * writes it: state node ids and event types only (never params, context or
 * outputs, which hold tokens). `index` tells apart the guarded candidates of
 * one event on one state node, in the order the chart lists them.
 */
export interface TraceLine {
  /** The machine's id: `account`, `session` or `loginAttempt`. */
  machine: string;
  /** The state node that declares the transition (`account.credentials.loading`). */
  source: string;
  /** The event descriptor it is declared for; `''` for an eventless (`always`) transition. */
  on: string;
  index: number;
  targets: string[];
  /** The type of the event being processed (for `always`, the one that led there). */
  event: string;
}

export interface TransitionShape {
  source: { id: string; machine: { id: string }; always?: unknown[]; transitions: Map<string, unknown[]> };
  eventType: string;
  target?: ReadonlyArray<{ id: string }>;
}

/** Which of its source state's candidates for its event (or `always`) `t` is, in the chart's order. */
export function candidateIndex(t: Pick<TransitionShape, 'source' | 'eventType'>): number {
  const candidates = t.eventType === '' ? (t.source.always ?? []) : (t.source.transitions.get(t.eventType) ?? []);
  return candidates.indexOf(t);
}

/** The trace lines of one `@xstate.microstep` inspection event (none for any other). */
export function traceLinesOf(event: InspectionEvent): TraceLine[] {
  if (event.type !== '@xstate.microstep') return [];
  const transitions = (event as unknown as { _transitions: TransitionShape[] })._transitions;
  return transitions.map((t) => ({
    machine: t.source.machine.id,
    source: t.source.id,
    on: t.eventType,
    index: candidateIndex(t),
    targets: (t.target ?? []).map((n) => n.id),
    event: event.event.type,
  }));
}

/**
 * An `inspect` callback that appends one JSON line per transition of every
 * machine in the actor system to `path` (opened for appending; written
 * synchronously, so the file is complete up to the last transition even if
 * the process is killed). Returns the callback and a `close`.
 */
export function createTransitionTrace(path: string): { inspect: (event: InspectionEvent) => void; close: () => void } {
  const fd = openSync(path, 'a', 0o600);
  return {
    inspect(event) {
      const lines = traceLinesOf(event);
      if (lines.length > 0) writeSync(fd, lines.map((l) => `${JSON.stringify(l)}\n`).join(''));
    },
    close: () => closeSync(fd),
  };
}

/**
 * `sink` (the inspectors, if any) with the transition trace to `path` added,
 * for `CODEX_ACCOUNT_SERVER_TRACE_TRANSITIONS`. A path that cannot be opened
 * is reported through `onError` and leaves `sink` as it was.
 */
export function withTransitionTrace(sink: InspectSink | undefined, path: string, onError: (message: string) => void): InspectSink | undefined {
  let trace: ReturnType<typeof createTransitionTrace>;
  try {
    trace = createTransitionTrace(path);
  } catch (error) {
    onError(`the transition trace could not be opened (${(error as NodeJS.ErrnoException).code ?? (error as Error).name}); serving without it`);
    return sink;
  }
  return {
    inspect(event) {
      sink?.inspect(event);
      trace.inspect(event);
    },
    rpc(rpcTrace) {
      sink?.rpc(rpcTrace);
    },
  };
}
