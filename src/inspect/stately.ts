import { createInspector, createWebSocketInspector, type StatelyInspectionEvent } from '@statelyai/inspect';
import type { InspectionEvent } from 'xstate';
import type { Redactor } from './redact.js';
import type { SseItem } from './sse.js';

/** Where the Stately inspector UI lives; the bridge page frames it. */
export const STATELY_INSPECTOR_URL = 'https://stately.ai/inspect';

export interface StatelyBridge {
  inspect(event: InspectionEvent): void;
  /** Calls `listener` with every later event (redacted, as JSON); returns the unsubscribe function. */
  subscribe(listener: (item: SseItem) => void): () => void;
  /** What a client connecting now needs to draw the current picture: actors, their latest snapshots, recent events. */
  replay(): SseItem[];
}

const RECENT_LIMIT = 200;
const ACTOR_LIMIT = 64;

/**
 * `@statelyai/inspect`'s `createInspector` (it turns XState inspection events
 * into the Stately inspector's protocol, machine definitions included) with an
 * adapter that hands each redacted event to the local bridge page's SSE
 * stream. The page posts them into the Stately inspector frame, as the
 * library's own `createInspectorServer` bridge does, but served on 127.0.0.1
 * with the token, Host and Origin checks, and with no browser auto-opened.
 */
export function createStatelyBridge(redactor: Redactor): StatelyBridge {
  const listeners = new Set<(item: SseItem) => void>();
  const actors = new Map<string, SseItem>();
  const snapshots = new Map<string, SseItem>();
  const recent: SseItem[] = [];

  const inspector = createInspector(
    {
      send(event: StatelyInspectionEvent) {
        const json = JSON.stringify(event);
        const sessionId = (event as { sessionId?: string }).sessionId ?? '';
        const item: SseItem = { json, coalesceKey: event.type === '@xstate.snapshot' ? sessionId : null };
        if (event.type === '@xstate.actor') {
          actors.set(sessionId, item);
          if (actors.size > ACTOR_LIMIT) actors.delete([...actors.keys()][1]!);
        } else if (event.type === '@xstate.snapshot') {
          if (actors.has(sessionId)) snapshots.set(sessionId, item);
        } else {
          recent.push(item);
          if (recent.length > RECENT_LIMIT) recent.shift();
        }
        for (const listener of listeners) listener(item);
      },
    },
    { serialize: (event) => redactor.redact(event) as StatelyInspectionEvent },
  );

  return {
    inspect: (event) => inspector.inspect.next?.(event),
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    replay: () => [...actors.values(), ...recent, ...snapshots.values()],
  };
}

/**
 * Streams to an existing relay instead (`--inspect=ws://127.0.0.1:8080`, e.g.
 * `createInspectorServer` from `@statelyai/inspect/server`), through the
 * library's own `createWebSocketInspector`; events still pass the redactor.
 */
export function createStatelyRelayClient(url: string, redactor: Redactor): { inspect(event: InspectionEvent): void; stop(): void } {
  const inspector = createWebSocketInspector({ url, serialize: (event) => redactor.redact(event) as StatelyInspectionEvent });
  return { inspect: (event) => inspector.inspect.next?.(event), stop: () => inspector.stop() };
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
