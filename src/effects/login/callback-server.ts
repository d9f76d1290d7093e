import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { decodeJwt } from 'jose';
import { AuthError } from '../../errors.js';
import type { Logger } from '../../log.js';
import { CALLBACK_PATH, checkCallbackQuery, checkPastedRedirectUrl, type PastedRedirectCheck } from './redirect.js';
import { DEFAULT_ISSUER, callbackUri } from './oauth.js';
import { SUCCESS_PAGE, errorPage } from './pages.js';

/** What the callback server tells its owner; each is called after the browser got its answer. */
export interface CallbackListener {
  /** A callback with the right state and a code: the request is held until `finish`. */
  onCode(code: string): void;
  /** A callback with the right state that ends the flow: issuer `error=` or no code. */
  onFailed(detail: string): void;
  /** `GET /cancel`: a newer login server wants the port. */
  onCancel(): void;
  /** `GET /success` after `finish({ ok: true })` redirected there. */
  onSuccessPage(): void;
}

export interface CallbackServerOptions {
  /** Tried in order (SPEC §6.1: 1455, then 1457); `0` binds any free port. */
  ports: readonly number[];
  issuer: string;
  /** The login's OAuth `state`. */
  state: string;
  listener: CallbackListener;
  log: Logger;
  /** Aborting stops binding, or closes the port once bound. */
  signal?: AbortSignal;
  /** Binds tried per port before the next one (default 10, ~2 s with the default delay, as the reference). */
  bindAttempts?: number;
  retryDelayMs?: number;
}

export type FinishResult = { ok: true; idToken: string; accessToken: string } | { ok: false; message: string };

export interface CallbackServer {
  readonly port: number;
  readonly redirectUri: string;
  /**
   * The callback checks applied to a pasted redirect URL. A code is taken at
   * most once, from the browser or from a paste (`alreadyUsed` after that).
   */
  checkPaste(url: string): PastedRedirectCheck | { kind: 'alreadyUsed' };
  /**
   * Answers the held callback: a 302 to `/success` (SPEC §6.1) or an error
   * page. Resolves once written, with whether a callback was held at all.
   */
  finish(result: FinishResult): Promise<boolean>;
  /** Closes the port and every connection. */
  close(): Promise<void>;
}

const TEXT = { 'Content-Type': 'text/plain; charset=UTF-8' };
const HTML = { 'Content-Type': 'text/html; charset=utf-8' };

const authClaims = (jwt: string): Record<string, unknown> => {
  try {
    const auth = decodeJwt(jwt)['https://api.openai.com/auth'];
    return typeof auth === 'object' && auth !== null ? (auth as Record<string, unknown>) : {};
  } catch {
    return {};
  }
};

/**
 * `/success?id_token=…&needs_setup=…&org_id=…&project_id=…&plan_type=…&platform_url=…`
 * (SPEC §6.1; the `needs_setup`/`platform_url` rules are the reference's).
 */
export function successUrl(port: number, issuer: string, idToken: string, accessToken: string): string {
  const id = authClaims(idToken);
  const access = authClaims(accessToken);
  const str = (v: unknown) => (typeof v === 'string' ? v : '');
  const needsSetup = id.completed_platform_onboarding !== true && id.is_org_owner === true;
  const query = new URLSearchParams([
    ['id_token', idToken],
    ['needs_setup', String(needsSetup)],
    ['org_id', str(id.organization_id)],
    ['project_id', str(id.project_id)],
    ['plan_type', str(access.chatgpt_plan_type)],
    ['platform_url', issuer === DEFAULT_ISSUER ? 'https://platform.openai.com' : 'https://platform.api.openai.org'],
  ]);
  return `http://127.0.0.1:${port}/success?${query}`;
}

/** `GET /cancel` with `Connection: close` to whoever holds the port: an older login server stops. */
export function sendCancel(port: number, timeoutMs = 2_000): Promise<void> {
  return new Promise((resolve) => {
    const req = request(
      { host: '127.0.0.1', port, path: '/cancel', method: 'GET', headers: { Connection: 'close' }, timeout: timeoutMs },
      (res) => {
        res.resume();
        res.on('end', () => resolve());
        res.on('error', () => resolve());
      },
    );
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve());
    req.end();
  });
}

function listen(server: Server, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (error: Error) => reject(error);
    server.once('error', onError);
    server.listen({ port, host: '127.0.0.1', exclusive: true }, () => {
      server.off('error', onError);
      resolve();
    });
  });
}

/**
 * Binds the first free port of `ports`. A busy port gets one `GET /cancel`
 * (it may be an older login of ours, SPEC §6.1) and is retried for ~2 s before
 * the next port; with all busy: `failed to start login server: Port 127.0.0.1:<last> is already in use`.
 */
async function bind(server: Server, o: CallbackServerOptions): Promise<number> {
  const attempts = o.bindAttempts ?? 10;
  const delay = o.retryDelayMs ?? 200;
  let last = o.ports[o.ports.length - 1] ?? 0;
  for (const port of o.ports) {
    last = port;
    let cancelSent = false;
    for (let attempt = 1; attempt <= attempts; attempt++) {
      o.signal?.throwIfAborted();
      try {
        await listen(server, port);
        return (server.address() as AddressInfo).port;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EADDRINUSE') {
          throw new AuthError('loginServerFailed', `failed to start login server: ${(error as Error).message}`);
        }
      }
      if (!cancelSent) {
        cancelSent = true;
        o.log.info(`login callback port 127.0.0.1:${port} is busy; asking its occupant to cancel`);
        await sendCancel(port);
      }
      await sleep(delay, undefined, { signal: o.signal });
    }
    o.log.warn(`login callback port 127.0.0.1:${port} stayed busy`);
  }
  throw new AuthError('loginServerFailed', `failed to start login server: Port 127.0.0.1:${last} is already in use`);
}

/**
 * The browser login's callback server on 127.0.0.1 (SPEC §6.1): open only
 * while a login waits, answering `/auth/callback`, `/success`, `/cancel` and
 * 404 otherwise. Requests must name the server itself in `Host` (a web page
 * using DNS rebinding cannot reach it). Nothing it logs holds the code or state.
 */
export async function openCallbackServer(o: CallbackServerOptions): Promise<CallbackServer> {
  let port = 0;
  let held: ServerResponse | null = null;
  let codeTaken = false;
  let awaitingSuccess = false;

  const answer = (res: ServerResponse, status: number, headers: Record<string, string>, body: string, then?: () => void) => {
    res.writeHead(status, headers);
    res.end(body, then);
  };

  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const hosts = [`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`];
    if (!hosts.includes((req.headers.host ?? '').toLowerCase())) {
      answer(res, 403, TEXT, 'Forbidden');
      return;
    }
    let url: URL;
    try {
      url = new URL(req.url ?? '/', `http://127.0.0.1:${port}`);
    } catch {
      answer(res, 400, TEXT, 'Bad Request');
      return;
    }
    switch (url.pathname) {
      case CALLBACK_PATH: {
        const check = checkCallbackQuery(url.searchParams, o.state);
        if (check.kind === 'stateMismatch') {
          o.log.info('login callback with a wrong or missing state; still waiting');
          answer(res, 400, TEXT, 'State mismatch');
          return;
        }
        if (codeTaken) {
          answer(res, 409, TEXT, 'This sign-in was already received');
          return;
        }
        codeTaken = true;
        if (check.kind === 'code') {
          held = res;
          o.listener.onCode(check.code);
          return;
        }
        const detail = check.kind === 'issuerError' ? check.detail : 'Missing authorization code. Sign-in could not be completed.';
        answer(res, 200, { ...HTML, Connection: 'close' }, errorPage(detail), () => o.listener.onFailed(detail));
        return;
      }
      case '/success':
        answer(res, 200, { ...HTML, Connection: 'close' }, SUCCESS_PAGE, () => {
          if (awaitingSuccess) o.listener.onSuccessPage();
        });
        return;
      case '/cancel':
        answer(res, 200, { Connection: 'close' }, 'Login cancelled', () => o.listener.onCancel());
        return;
      default:
        answer(res, 404, TEXT, 'Not Found');
    }
  };

  const server = createServer(handle);
  server.keepAliveTimeout = 1_000;
  try {
    port = await bind(server, o);
  } catch (error) {
    server.close();
    if (o.signal?.aborted) throw o.signal.reason;
    throw error;
  }

  let closing: Promise<void> | null = null;
  const close = () =>
    (closing ??= new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }));
  o.signal?.addEventListener('abort', () => void close(), { once: true });
  if (o.signal?.aborted) await close();

  return {
    port,
    redirectUri: callbackUri(port),
    checkPaste(text) {
      const check = checkPastedRedirectUrl(text, o.state);
      if (check.kind === 'invalidUrl' || check.kind === 'stateMismatch') return check;
      if (codeTaken) return { kind: 'alreadyUsed' };
      // A missing code keeps the login waiting: the paste was probably cut short.
      if (check.kind !== 'missingCode') codeTaken = true;
      return check;
    },
    finish(result) {
      const res = held;
      held = null;
      if (res === null || res.writableEnded || res.destroyed) return Promise.resolve(false);
      return new Promise<boolean>((resolve) => {
        if (result.ok) {
          awaitingSuccess = true;
          answer(res, 302, { Location: successUrl(port, o.issuer, result.idToken, result.accessToken) }, '', () => resolve(true));
        } else {
          answer(res, 200, { ...HTML, Connection: 'close' }, errorPage(result.message), () => resolve(true));
        }
        res.on('close', () => resolve(true));
      });
    },
    close,
  };
}
