import type { InspectionEvent } from 'xstate';
import type { Logger } from '../log.js';
import { createInspectFeed } from './feed.js';
import { startInspectServer, type InspectServer, type Route } from './http-server.js';
import type { InspectRequest } from './options.js';
import { pageCsp, renderLivePage } from './page.js';
import { createRedactor } from './redact.js';
import { bridgeCsp, createStatelyBridge, createStatelyRelayClient, renderBridgePage } from './stately.js';
import type { InspectSink, RpcTrace } from './types.js';

export { parseInspectRequest, type InspectRequest } from './options.js';
export { withTransitionTrace } from './transition-trace.js';
export type { InspectSink, RpcTrace } from './types.js';

export interface Inspection extends InspectSink {
  /** Resolves with the server once it listens, or null when it could not (said on stderr). */
  ready: Promise<InspectServer | null>;
  close(): Promise<void>;
}

/**
 * Everything `--inspect` and `--inspect-ui` start, behind one `InspectSink`:
 * one redactor, the page feed and/or the Stately bridge on one local server,
 * or a relay client. Returns at once (the sink must exist before the actor);
 * the server listens in the background, and where to connect is written with
 * `announce` (stderr). A server that cannot listen leaves JSON-RPC untouched.
 */
export function startInspection(request: InspectRequest, log: Logger, announce: (line: string) => void): Inspection {
  const redactor = createRedactor();
  const feed = request.ui ? createInspectFeed(redactor) : null;
  const bridge = request.stately === 'bridge' ? createStatelyBridge(redactor) : null;
  const relay = request.stately !== null && typeof request.stately === 'object' ? createStatelyRelayClient(request.stately.relay, redactor) : null;

  const routes: { live?: Route; stately?: Route } = {};
  if (feed) {
    routes.live = {
      page: (nonce) => renderLivePage(nonce),
      csp: pageCsp,
      stream: { initial: () => [feed.initial()], subscribe: feed.subscribe },
    };
  }
  if (bridge) {
    routes.stately = { page: renderBridgePage, csp: bridgeCsp, stream: { initial: bridge.replay, subscribe: bridge.subscribe } };
  }

  const ready: Promise<InspectServer | null> =
    feed || bridge
      ? startInspectServer({ port: request.port, routes, log }).then(
          (server) => {
            if (bridge) announce(`codex-account-server: Stately inspector: open ${server.url('/stately')}`);
            if (feed) announce(`codex-account-server: live state page: open ${server.url('/')}`);
            return server;
          },
          (error: NodeJS.ErrnoException) => {
            const why = error.code === 'EADDRINUSE' ? `port ${request.port} is busy` : error.message;
            log.error(`inspect server could not start (${why}); serving JSON-RPC without it`);
            return null;
          },
        )
      : Promise.resolve(null);
  if (relay && request.stately && typeof request.stately === 'object') {
    announce(`codex-account-server: streaming inspection events to ${request.stately.relay}`);
  }

  return {
    inspect(event: InspectionEvent) {
      feed?.inspect(event);
      bridge?.inspect(event);
      relay?.inspect(event);
    },
    rpc(trace: RpcTrace) {
      feed?.rpc(trace);
    },
    ready,
    async close() {
      relay?.stop();
      await (await ready)?.close();
    },
  };
}
