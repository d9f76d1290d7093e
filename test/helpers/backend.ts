import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { AddressInfo } from 'node:net';

export interface Recorded {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
}

export interface Reply {
  status?: number;
  json?: unknown;
  text?: string;
  headers?: Record<string, string>;
  /** Destroy the socket instead of answering (network failure). */
  hangUp?: boolean;
}

export type Route = (req: Recorded) => Reply | Promise<Reply>;

/**
 * A real HTTP server on 127.0.0.1 playing the ChatGPT backend or the OAuth
 * issuer. It records every request so tests can check what the server sent.
 */
export class FakeBackend {
  readonly requests: Recorded[] = [];
  readonly routes = new Map<string, Route>();
  /** Answers requests to paths without a route (default: 404). */
  fallback: Route | null = null;
  #server: Server;
  readonly #scheme: 'http' | 'https';
  port = 0;

  private constructor(tls?: { key: string; cert: string }) {
    this.#scheme = tls ? 'https' : 'http';
    const handler = (req: IncomingMessage, res: ServerResponse) => {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (c: string) => (body += c));
      req.on('end', async () => {
        const recorded: Recorded = { method: req.method ?? '', path: req.url ?? '', headers: req.headers, body };
        this.requests.push(recorded);
        const route = this.routes.get((req.url ?? '').split('?')[0]!);
        const reply: Reply = route ? await route(recorded) : this.fallback ? await this.fallback(recorded) : { status: 404, text: 'Not Found' };
        if (reply.hangUp) {
          req.socket.destroy();
          return;
        }
        const headers = { ...(reply.json !== undefined ? { 'content-type': 'application/json' } : {}), ...reply.headers };
        res.writeHead(reply.status ?? 200, headers);
        res.end(reply.json !== undefined ? JSON.stringify(reply.json) : (reply.text ?? ''));
      });
    };
    this.#server = tls ? createTlsServer(tls, handler) : createServer(handler);
  }

  /** Plain HTTP, or HTTPS with the given key and certificate. */
  static async start(tls?: { key: string; cert: string }): Promise<FakeBackend> {
    const backend = new FakeBackend(tls);
    await new Promise<void>((resolve) => backend.#server.listen(0, '127.0.0.1', resolve));
    backend.port = (backend.#server.address() as AddressInfo).port;
    return backend;
  }

  get origin(): string {
    return `${this.#scheme}://127.0.0.1:${this.port}`;
  }

  /** A `chatgpt_base_url` pointing here. */
  get baseUrl(): string {
    return `${this.origin}/backend-api/`;
  }

  on(path: string, route: Route | Reply): this {
    this.routes.set(path, typeof route === 'function' ? route : () => route);
    return this;
  }

  requestsTo(path: string): Recorded[] {
    return this.requests.filter((r) => r.path.split('?')[0] === path);
  }

  async stop(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

/** A `wham/accounts/check` answer listing the given workspaces. */
export function accountsCheck(
  accounts: Array<{ id: string; name?: string | null; origin?: string; override?: string }>,
): Reply {
  return {
    json: {
      accounts: accounts.map((a) => ({
        id: a.id,
        name: a.name ?? null,
        structure: 'workspace',
        plan_type: 'team',
        is_deactivated: false,
        can_access_with_session: true,
        workspace_backend_origin: a.origin ?? 'https://chatgpt.com',
        account_routing_override: a.override ?? 'NO_CONSTRAINT',
      })),
      account_ordering: accounts.map((a) => a.id),
      default_account_id: accounts[0]?.id ?? null,
    },
  };
}
