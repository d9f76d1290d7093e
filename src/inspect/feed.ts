import type { InspectionEvent } from 'xstate';
import type { Redactor } from './redact.js';
import type { SseItem } from './sse.js';
import type { InspectSink, RpcTrace } from './types.js';

/** The latest state of one actor, as the page shows it (already redacted). */
export interface ActorView {
  actor: string;
  id: string;
  /** Machine id when the actor is a state machine (it then has a diagram); `null` for promises and callbacks. */
  machine: string | null;
  parent: string | null;
  status: string;
  value: unknown;
  /**
   * Every active state node as `<machine>:<dotted path>` (the ids the SVGs in
   * visualizations/ give their states): for a parallel or nested value, the
   * regions and compound states as well as the leaves. Empty for non-machines.
   */
  active: string[];
  context: unknown;
  tags: string[];
}

/**
 * The active state nodes of a state value, as dotted paths from the root:
 * `{credentials: {chatgptSession: 'chatgpt'}, login: 'idle'}` gives
 * `credentials`, `credentials.chatgptSession`, `credentials.chatgptSession.chatgpt`,
 * `login`, `login.idle`. Anything that is no state value gives none.
 */
export function activeStatePaths(value: unknown, prefix = ''): string[] {
  if (typeof value === 'string') return value === '' ? [] : [prefix + value];
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return [];
  const out: string[] = [];
  for (const [key, child] of Object.entries(value)) {
    out.push(prefix + key);
    out.push(...activeStatePaths(child, `${prefix}${key}.`));
  }
  return out;
}

/** One row of the page's log (already redacted). */
export type LogEntry =
  | { at: number; kind: 'event'; actor: string; source: string | null; event: unknown }
  | { at: number; kind: 'emitted'; actor: string; event: unknown }
  | { at: number; kind: 'actor'; actor: string; id: string; machine: string | null; parent: string | null }
  | { at: number; kind: 'rpc'; rpc: RpcTrace }
  | { at: number; kind: 'note'; text: string };

/** What page clients receive: the actor states on connect, then changes and log rows. */
export type FeedMessage =
  | { type: 'init'; actors: ActorView[]; log: LogEntry[] }
  | { type: 'snapshot'; snapshot: ActorView }
  | { type: 'log'; entry: LogEntry };

/** A message with its JSON, serialised once for every client; snapshots of one actor coalesce. */
export interface FeedItem extends SseItem {
  message: FeedMessage;
}

export interface InspectFeed extends InspectSink {
  /** Calls `listener` with each later batch of items (at most one per `FLUSH_MS`); returns the unsubscribe function. */
  subscribe(listener: (items: FeedItem[]) => void): () => void;
  /** The `init` message for a client connecting now. */
  initial(): FeedItem;
}

/** Log rows kept for a connecting client. */
const LOG_LIMIT = 300;
/** Log rows sent per flush at most (the newest); a flood beyond that is skipped, with a note. */
const FLUSH_LIMIT = 100;
/** Clients get a batch at most this often: plenty for a person, and a flood costs a bounded amount of work. */
const FLUSH_MS = 50;
const MAX_ACTORS = 64;

type Raw =
  | { kind: 'inspection'; at: number; event: InspectionEvent }
  | { kind: 'rpc'; at: number; trace: RpcTrace };

interface ActorRefShape {
  sessionId: string;
  id: string;
  _parent?: { sessionId: string };
  logic?: { config?: { id?: unknown } };
}

interface SnapshotShape {
  status?: unknown;
  value?: unknown;
  context?: unknown;
  tags?: unknown;
}

const item = (message: FeedMessage, coalesceKey: string | null = null): FeedItem => ({
  message,
  json: JSON.stringify(message),
  coalesceKey,
});

/**
 * Turns inspection events and RPC traces into page messages, all through one
 * redactor. Work is batched every `FLUSH_MS`: each actor's snapshot is sent
 * once per batch and only when its value, status or context changed, and at
 * most the last `FLUSH_LIMIT` log rows per batch (a note says how many were
 * skipped; only those sent are ever converted).
 * With no client connected it only keeps raw references (the last
 * `LOG_LIMIT` log-worthy events and each actor's latest snapshot; XState
 * snapshots are immutable) and converts them when a client connects.
 */
export function createInspectFeed(redactor: Redactor, now: () => number = Date.now): InspectFeed {
  const listeners = new Set<(items: FeedItem[]) => void>();
  const recent: Raw[] = [];
  const actors = new Map<string, { ref: ActorRefShape; snapshot: unknown }>();
  /** What was last sent per actor, to skip snapshots that changed nothing. */
  const sent = new Map<string, { status: unknown; value: string; context: unknown }>();
  let pending: Raw[] = [];
  let skipped = 0;
  const dirty = new Set<string>();
  let scheduled = false;

  const machineOf = (ref: ActorRefShape): string | null => {
    const id = ref.logic?.config?.id;
    return typeof id === 'string' ? id : null;
  };

  const viewOf = (ref: ActorRefShape, snapshot: unknown): ActorView => {
    const s = (snapshot ?? {}) as SnapshotShape;
    const machine = machineOf(ref);
    // State names come from the machine definitions, never from input: no redaction needed.
    const active = machine === null ? [] : activeStatePaths(s.value).map((path) => `${machine}:${path}`);
    return {
      actor: ref.sessionId,
      id: redactor.text(ref.id),
      machine,
      parent: ref._parent?.sessionId ?? null,
      status: typeof s.status === 'string' ? s.status : 'active',
      value: redactor.redact(s.value) ?? null,
      active,
      context: redactor.redact(s.context) ?? null,
      tags: s.tags instanceof Set ? [...s.tags].map(String) : [],
    };
  };
  /** A log row for a raw item, or null when the page does not log it. */
  const entryOf = (raw: Raw): LogEntry | null => {
    if (raw.kind === 'rpc') {
      const rpc = { ...raw.trace, method: redactor.text(raw.trace.method) } as RpcTrace;
      if ('id' in rpc) rpc.id = redactor.text(rpc.id);
      return { at: raw.at, kind: 'rpc', rpc };
    }
    const event = raw.event;
    const ref = event.actorRef as unknown as ActorRefShape;
    switch (event.type) {
      case '@xstate.event':
        return {
          at: raw.at,
          kind: 'event',
          actor: ref.sessionId,
          source: (event.sourceRef as unknown as ActorRefShape | undefined)?.sessionId ?? null,
          event: redactor.redact(event.event),
        };
      case '@xstate.action': {
        const params = event.action.params as { event?: unknown } | undefined;
        return { at: raw.at, kind: 'emitted', actor: ref.sessionId, event: redactor.redact(params?.event) };
      }
      case '@xstate.actor':
        return {
          at: raw.at,
          kind: 'actor',
          actor: ref.sessionId,
          id: redactor.text(ref.id),
          machine: machineOf(ref),
          parent: ref._parent?.sessionId ?? null,
        };
      default:
        return null;
    }
  };

  const flush = () => {
    scheduled = false;
    const items: FeedItem[] = [];
    for (const sessionId of dirty) {
      const entry = actors.get(sessionId);
      if (!entry) continue;
      const s = (entry.snapshot ?? {}) as SnapshotShape;
      const mark = { status: s.status, value: JSON.stringify(s.value ?? null), context: s.context };
      const last = sent.get(sessionId);
      if (last && last.status === mark.status && last.value === mark.value && last.context === mark.context) continue;
      sent.set(sessionId, mark);
      items.push(item({ type: 'snapshot', snapshot: viewOf(entry.ref, entry.snapshot) }, sessionId));
      if (mark.status !== 'active' && entry.ref._parent) actors.delete(sessionId);
    }
    dirty.clear();
    if (skipped > 0) {
      const text = `${skipped} log rows skipped (more than ${FLUSH_LIMIT} in ${FLUSH_MS} ms)`;
      items.push(item({ type: 'log', entry: { at: now(), kind: 'note', text } }));
      skipped = 0;
    }
    for (const raw of pending) {
      const entry = entryOf(raw);
      if (entry) items.push(item({ type: 'log', entry }));
    }
    pending = [];
    if (items.length > 0) for (const listener of listeners) listener(items);
  };

  const schedule = () => {
    if (scheduled || listeners.size === 0) return;
    scheduled = true;
    setTimeout(flush, FLUSH_MS).unref();
  };

  const keep = (raw: Raw) => {
    recent.push(raw);
    if (recent.length > LOG_LIMIT) recent.shift();
    if (listeners.size === 0) return;
    pending.push(raw);
    if (pending.length > FLUSH_LIMIT) {
      pending.shift();
      skipped++;
    }
    schedule();
  };

  return {
    inspect(event) {
      const ref = event.actorRef as unknown as ActorRefShape;
      switch (event.type) {
        case '@xstate.actor':
          // Its snapshot follows in `@xstate.snapshot` (reading it now would throw while it initialises).
          actors.set(ref.sessionId, { ref, snapshot: undefined });
          // Children stopped without a final snapshot must not pile up.
          if (actors.size > MAX_ACTORS) actors.delete([...actors.keys()][1]!);
          keep({ kind: 'inspection', at: now(), event });
          return;
        case '@xstate.snapshot': {
          actors.set(ref.sessionId, { ref, snapshot: event.snapshot });
          const status = (event.snapshot as SnapshotShape).status;
          if (listeners.size > 0) {
            dirty.add(ref.sessionId);
            schedule();
          } else if (status !== 'active' && ref._parent) {
            // Finished children leave the actor list (a watching client gets their last snapshot first).
            actors.delete(ref.sessionId);
          }
          return;
        }
        case '@xstate.event':
          keep({ kind: 'inspection', at: now(), event });
          return;
        case '@xstate.action':
          if (event.action.type === 'xstate.emit') keep({ kind: 'inspection', at: now(), event });
          return;
        default:
          return;
      }
    },
    rpc(trace) {
      keep({ kind: 'rpc', at: now(), trace });
    },
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    initial() {
      for (const [sessionId, { snapshot }] of actors) {
        const s = (snapshot ?? {}) as SnapshotShape;
        sent.set(sessionId, { status: s.status, value: JSON.stringify(s.value ?? null), context: s.context });
      }
      return item({
        type: 'init',
        actors: [...actors.values()].map(({ ref, snapshot }) => viewOf(ref, snapshot)),
        log: recent.map(entryOf).filter((e): e is LogEntry => e !== null),
      });
    },
  };
}
