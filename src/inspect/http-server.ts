import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../log.js';
import { checkRequest, newToken } from './guard.js';
import { SseClient, type SseItem } from './sse.js';

/** A page and its event stream, as the server mounts them. */
export interface Stream {
  /** Items a new client gets first. */
  initial(): SseItem[];
  /** Later items, a batch per event-loop turn. */
  subscribe(listener: (items: SseItem[]) => void): () => void;
}

export interface Route {
  /** Page HTML for a per-response CSP nonce. */
  page(nonce: string): string;
  csp(nonce: string): string;
  stream: Stream;
}

export interface InspectServerOptions {
  /** 0 picks a free port. */
  port: number;
  /** Mounted at `/` (+ `/events`) and `/stately` (+ `/stately/events`). */
  routes: { live?: Route; stately?: Route };
  log: Logger;
  /** Open event streams allowed at once; more are answered 503. */
  maxClients?: number;
  /** Interval of keep-alive comments on streams. */
  pingMs?: number;
}

export interface InspectServer {
  port: number;
  token: string;
  /** `http://127.0.0.1:PORT/path?token=…` for a mounted page. */
  url(path: '/' | '/stately'): string;
  close(): Promise<void>;
}

const SECURITY_HEADERS = {
  'Cache-Control': 'no-store',
  'Referrer-Policy': 'no-referrer',
  'X-Content-Type-Options': 'nosniff',
  'Cross-Origin-Resource-Policy': 'same-origin',
  'Cross-Origin-Opener-Policy': 'same-origin',
};

/**
 * The local inspect server: bound to 127.0.0.1 only, every request checked by
 * `checkRequest` (Host, Origin, method, path, token in constant time). Pages
 * are served with a nonce CSP; streams are server-sent events with bounded
 * memory per client (see `SseClient`). Whatever a client does (refused, gone
 * mid-stream, never reading, malformed HTTP) is said on stderr and touches
 * nothing else: JSON-RPC on stdio goes on. Rejects when it cannot listen
 * (e.g. the port is busy); the caller logs that and serves on without it.
 */
export async function startInspectServer(options: InspectServerOptions): Promise<InspectServer> {
  const { log, routes } = options;
  const maxClients = options.maxClients ?? 8;
  const token = newToken();
  let port = options.port;
  let nextClient = 1;
  const clients = new Set<SseClient>();

  const mounts = new Map<string, { route: Route; kind: 'page' | 'stream' }>();
  if (routes.live) {
    mounts.set('/', { route: routes.live, kind: 'page' });
    mounts.set('/events', { route: routes.live, kind: 'stream' });
  }
  if (routes.stately) {
    mounts.set('/stately', { route: routes.stately, kind: 'page' });
    mounts.set('/stately/events', { route: routes.stately, kind: 'stream' });
  }
  const paths = new Set(mounts.keys());

  const refuse = (res: ServerResponse, status: number, text: string) => {
    res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', ...SECURITY_HEADERS });
    res.end(`${text}\n`);
  };

  const openStream = (req: IncomingMessage, res: ServerResponse, stream: Stream, path: string) => {
    if (clients.size >= maxClients) {
      log.warn(`inspect server: refused a ${maxClients + 1}th stream client on ${path} (limit ${maxClients})`);
      refuse(res, 503, 'too many clients');
      return;
    }
    const n = nextClient++;
    res.writeHead(200, { 'Content-Type': 'text/event-stream; charset=utf-8', Connection: 'keep-alive', ...SECURITY_HEADERS });
    req.socket.setNoDelay(true);
    const client = new SseClient(res, {
      congested: () => log.warn(`inspect server: client #${n} on ${path} is not reading; dropping events until it does`),
      recovered: (dropped) => log.warn(`inspect server: client #${n} on ${path} reads again; ${dropped} events were dropped`),
    });
    clients.add(client);
    log.warn(`inspect server: client #${n} connected to ${path} (${clients.size} open)`);
    client.sendBatch(stream.initial());
    const unsubscribe = stream.subscribe((items) => client.sendBatch(items));
    res.on('close', () => {
      unsubscribe();
      clients.delete(client);
      log.warn(`inspect server: client #${n} on ${path} disconnected (${clients.size} open)`);
    });
    res.on('error', (error) => log.warn(`inspect server: client #${n} on ${path}: ${error.message}`));
  };

  const server = createServer((req, res) => {
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://127.0.0.1');
    } catch {
      refuse(res, 400, 'bad request');
      return;
    }
    // Browsers ask for it unprompted; answering keeps the log quiet and says nothing.
    if (url.pathname === '/favicon.ico') {
      res.writeHead(204, SECURITY_HEADERS).end();
      return;
    }
    const refusal = checkRequest(req, url, { port, token, paths });
    if (refusal) {
      // Only the path: the query may hold a (wrong) token.
      log.warn(`inspect server: refused ${req.method} ${url.pathname}: ${refusal.why} (${refusal.status})`);
      refuse(res, refusal.status, refusal.status === 404 ? 'not found' : 'forbidden');
      return;
    }
    const mount = mounts.get(url.pathname)!;
    if (mount.kind === 'stream') {
      openStream(req, res, mount.route.stream, url.pathname);
      return;
    }
    const nonce = randomBytes(16).toString('base64');
    res.writeHead(200, {
      'Content-Type': 'text/html; charset=utf-8',
      'Content-Security-Policy': mount.route.csp(nonce),
      'X-Frame-Options': 'DENY',
      ...SECURITY_HEADERS,
    });
    res.end(req.method === 'HEAD' ? undefined : mount.route.page(nonce));
  });
  server.on('clientError', (error, socket) => {
    log.warn(`inspect server: malformed request (${(error as NodeJS.ErrnoException).code ?? error.message})`);
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
    else socket.destroy();
  });
  // The inspect server must never keep the process alive once stdin is gone.
  server.unref();

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.on('error', (error) => log.warn(`inspect server: ${error.message}`));
  port = (server.address() as AddressInfo).port;

  const pingMs = options.pingMs ?? 15_000;
  const ping = setInterval(() => {
    for (const client of clients) client.ping();
  }, pingMs);
  ping.unref();

  return {
    port,
    token,
    url: (path) => `http://127.0.0.1:${port}${path}?token=${token}`,
    close: () =>
      new Promise<void>((resolve) => {
        clearInterval(ping);
        for (const client of clients) client.close();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
