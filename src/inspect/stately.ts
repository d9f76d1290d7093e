import { createInspector, createWebSocketInspector, type StatelyInspectionEvent } from '@statelyai/inspect';
import type { InspectionEvent } from 'xstate';
import type { Redactor } from './redact.js';
import type { SseItem } from './sse.js';

/** Where the Stately inspector UI lives; the bridge page frames it. */
export const STATELY_INSPECTOR_URL = 'https://stately.ai/inspect';

export interface StatelyBridge {
  inspect(event: InspectionEvent): void;
  /** Calls `listener` with later events (redacted, as JSON), a batch per event-loop turn; returns the unsubscribe function. */
  subscribe(listener: (items: SseItem[]) => void): () => void;
  /** What a client connecting now needs to draw the current picture: actors and their latest snapshots. */
  replay(): SseItem[];
}


/**
 * Passes on only what the Stately inspector draws (actors, events, snapshots;
 * it ignores microsteps and actions), and a snapshot only when its value,
 * status or context changed: a read answered in place changes nothing, and
 * the library converts every event it is given in a timer of its own.
 */
function skipUnchangedSnapshots(next: (event: InspectionEvent) => void): (event: InspectionEvent) => void {
  const last = new Map<string, { status: unknown; value: unknown; context: unknown }>();
  return (event) => {
    if (event.type === '@xstate.snapshot') {
      const s = event.snapshot as { status?: unknown; value?: unknown; context?: unknown };
      const sessionId = event.actorRef.sessionId;
      const prev = last.get(sessionId);
      // Values are strings or objects rebuilt only on a transition; the reference is enough.
      if (prev && prev.status === s.status && prev.value === s.value && prev.context === s.context) return;
      last.set(sessionId, { status: s.status, value: s.value, context: s.context });
      if (s.status !== 'active') last.delete(sessionId);
      next(event);
    } else if (event.type === '@xstate.actor' || event.type === '@xstate.event') {
      next(event);
    }
  };
}
const ACTOR_LIMIT = 64;

/** Events handed to the library per flush at most; a flood beyond that is skipped. */
const FLUSH_LIMIT = 100;
const FLUSH_MS = 50;

/**
 * `@statelyai/inspect`'s `createInspector` (it turns XState inspection events
 * into the Stately inspector's protocol, machine definitions included) with an
 * adapter that hands each redacted event to the local bridge page's SSE
 * stream. The page posts them into the Stately inspector frame, as the
 * library's own `createInspectorServer` bridge does, but served on 127.0.0.1
 * with the token, Host and Origin checks, and with no browser auto-opened.
 *
 * The library converts each event in a timer of its own, so events are
 * handed over in batches every `FLUSH_MS`: every actor and (changed)
 * snapshot, and the newest `FLUSH_LIMIT` events; with no page open, only
 * actors and snapshots (a page that connects gets the current picture).
 */
export function createStatelyBridge(redactor: Redactor): StatelyBridge {
  const listeners = new Set<(items: SseItem[]) => void>();
  const actors = new Map<string, SseItem>();
  const snapshots = new Map<string, SseItem>();
  let batch: SseItem[] = [];
  const flushOut = () => {
    const items = batch;
    batch = [];
    for (const listener of listeners) listener(items);
  };

  const inspector = createInspector(
    {
      send(event: StatelyInspectionEvent) {
        const json = JSON.stringify(event);
        const sessionId = (event as { sessionId?: string }).sessionId ?? '';
        const item: SseItem = { json, coalesceKey: event.type === '@xstate.snapshot' ? sessionId : null };
        if (event.type === '@xstate.actor') {
          actors.set(sessionId, item);
          if (actors.size > ACTOR_LIMIT) actors.delete([...actors.keys()][1]!);
        } else if (event.type === '@xstate.snapshot' && actors.has(sessionId)) {
          snapshots.set(sessionId, item);
        }
        if (listeners.size === 0) return;
        if (batch.length === 0) setImmediate(flushOut);
        batch.push(item);
      },
    },
    { serialize: (event) => redactor.redact(event) as StatelyInspectionEvent },
  );

  let queue: InspectionEvent[] = [];
  let events = 0;
  let scheduled = false;
  const flushIn = () => {
    scheduled = false;
    let skip = Math.max(0, events - FLUSH_LIMIT);
    const forward = queue;
    queue = [];
    events = 0;
    for (const event of forward) {
      if (event.type === '@xstate.event' && skip > 0) {
        skip--;
        continue;
      }
      inspector.inspect.next?.(event);
    }
  };
  const enqueue = skipUnchangedSnapshots((event) => {
    if (event.type === '@xstate.event') {
      if (listeners.size === 0) return;
      events++;
      // Memory stays bounded between flushes too: drop the oldest events early.
      if (events > 4 * FLUSH_LIMIT) {
        let drop = events - FLUSH_LIMIT;
        queue = queue.filter((e) => e.type !== '@xstate.event' || drop-- <= 0);
        events = FLUSH_LIMIT;
      }
    }
    queue.push(event);
    if (!scheduled) {
      scheduled = true;
      setTimeout(flushIn, FLUSH_MS).unref();
    }
  });

  return {
    inspect: enqueue,
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    replay: () => [...actors.values(), ...snapshots.values()],
  };
}

/**
 * Streams to an existing relay instead (`--inspect=ws://127.0.0.1:8080`, e.g.
 * `createInspectorServer` from `@statelyai/inspect/server`), through the
 * library's own `createWebSocketInspector`; events still pass the redactor.
 */
export function createStatelyRelayClient(url: string, redactor: Redactor): { inspect(event: InspectionEvent): void; stop(): void } {
  const inspector = createWebSocketInspector({ url, serialize: (event) => redactor.redact(event) as StatelyInspectionEvent });
  return { inspect: skipUnchangedSnapshots((event) => inspector.inspect.next?.(event)), stop: () => inspector.stop() };
}

/** The bridge page: frames the Stately inspector and posts the SSE events into it once it says it is ready. */
export function renderBridgePage(nonce: string): string {
  const origin = new URL(STATELY_INSPECTOR_URL).origin;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="referrer" content="no-referrer">
<title>codex-account-server · Stately inspector</title>
<style nonce="${nonce}">html, body { margin: 0; height: 100%; } iframe { border: 0; width: 100%; height: 100%; }</style>
</head>
<body>
<iframe id="inspector" src="${STATELY_INSPECTOR_URL}"></iframe>
<script nonce="${nonce}">
(function () {
  var frame = document.getElementById('inspector');
  var token = new URLSearchParams(location.search).get('token') || '';
  var ready = false;
  var buffer = [];
  function post(event) { frame.contentWindow.postMessage(event, ${JSON.stringify(origin)}); }
  window.addEventListener('message', function (e) {
    if (e.origin !== ${JSON.stringify(origin)} || !e.data || e.data.type !== '@statelyai.connected') return;
    ready = true;
    buffer.splice(0).forEach(post);
  });
  var source = new EventSource('/stately/events?token=' + encodeURIComponent(token));
  source.onmessage = function (e) {
    var event = JSON.parse(e.data);
    if (ready) post(event);
    else { buffer.push(event); if (buffer.length > 2000) buffer.shift(); }
  };
})();
</script>
</body>
</html>
`;
}

/** CSP of the bridge page: its own script, the Stately frame, and the feed on this origin. */
export function bridgeCsp(nonce: string): string {
  return [
    "default-src 'none'",
    `script-src 'nonce-${nonce}'`,
    `style-src 'nonce-${nonce}'`,
    `frame-src ${new URL(STATELY_INSPECTOR_URL).origin}`,
    "connect-src 'self'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
}
