import { randomUUID } from 'node:crypto';
import type { Policy } from '../../machines/account-types.js';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { holdWithFlock, type HeldLock } from '../helpers/flock.js';
import { accountsCheck, type Reply } from '../helpers/backend.js';
import type { IssuerRequest } from '../helpers/issuer.js';
import { hostToken } from '../helpers/surface.js';
import { tempHome, type ServerProcess, type Wire } from '../helpers/server-process.js';
import { keyOf } from './coverage.js';
import { apiKeyFile, heldAuthFile, otherProcessWrites, storedLogin, USAGE_BODY, WORKSPACES, type World, type WorldStart } from './world.js';

/**
 * The real world a generated path is replayed in: one server process, its
 * CODEX_HOME, and every effect of the server held until the path says how it
 * ends. The load reads a FIFO; writes wait on `auth.lock` (held by flock(1));
 * the backend stand-in holds discovery and every call; the issuer stand-in
 * holds its answers; the host answers `account/chatgptAuthTokens/refresh`
 * only when told. A step of a path releases one of them with the outcome the
 * path names, or sends a request, or writes `auth.json` as another process.
 */
export type HeldKind = 'discover' | 'call' | 'refresh' | 'usercode' | 'token' | 'poll';

/** How a held answer ends: success, failure, or (backend) 401. */
export type Outcome = boolean | 'unauthorized';

interface Held {
  kind: HeldKind;
  path: string;
  release(outcome: Outcome): void;
}

const TRACE_TIMEOUT_MS = 6_000;

export class Replay {
  readonly home = tempHome();
  s!: ServerProcess;
  readonly #held: Held[] = [];
  /** Once the path has ended, nothing is held any more: everything in flight may finish. */
  #open = false;
  readonly #answeredAsks = new Set<unknown>();
  readonly #requests: Array<{ id: unknown; method: string; response: Promise<Wire> }> = [];
  #fifo: { release(text: string): void } | null = null;
  #fifoIno = 0;
  #authLock: HeldLock | null = null;
  #authJsonLock: HeldLock | null = null;
  /** Trace lines of each machine already matched by earlier steps. */
  readonly #cursor = new Map<string, number>();
  loginId: string | null = null;
  userCode: string | null = null;
  /** The browser login's authorize URL (from the answer to `account/login/start`). */
  authUrl: string | null = null;
  /** The browser's request to the callback, held by the login server until the attempt ends. */
  callback: Promise<Response> | null = null;
  #n = 0;

  constructor(readonly w: World) {}

  /** Starts the server with `auth.json` a FIFO (the load waits for `releaseLoad`), uninitialized, under `policy`. */
  async start({ policy, ...options }: WorldStart & { policy?: Policy } = {}): Promise<void> {
    this.#fifo = heldAuthFile(this.home);
    this.#fifoIno = statSync(join(this.home, 'auth.json')).ino;
    const { backend, issuer } = this.w;
    backend.on('/backend-api/wham/accounts/check', (req) =>
      this.#hold('discover', req.path, (ok) => (ok === true ? accountsCheck(WORKSPACES) : failed(ok))),
    );
    backend.fallback = (req) => this.#hold('call', req.path, (ok) => (ok === true ? { json: req.path.includes('/wham/usage') ? USAGE_BODY : {} } : failed(ok)));
    issuer.hold = (req) => this.#holdIssuer(req);
    // Held answers may wait long past the usual HTTP deadline while a path goes on.
    const env = { CODEX_ACCOUNT_SERVER_HTTP_TIMEOUT_MS: '60000', ...options.env };
    const configLines =
      (policy?.forcedLoginMethod ? `forced_login_method = "${policy.forcedLoginMethod}"\n` : '') +
      (policy?.forcedWorkspaceIds ? `forced_chatgpt_workspace_id = "${policy.forcedWorkspaceIds[0]}"\n` : '');
    this.s = await this.w.start({ ...options, configLines, env, home: this.home, initialize: false });
  }

  // ------------------------------------------------------------ holding

  #hold(kind: HeldKind, path: string, reply: (ok: Outcome) => Reply): Promise<Reply> {
    if (this.#open) return Promise.resolve(reply(true));
    return new Promise((resolve) => this.#held.push({ kind, path, release: (ok) => resolve(reply(ok)) }));
  }

  async #holdIssuer(req: IssuerRequest): Promise<void> {
    const kind: HeldKind | null =
      req.path === '/oauth/token' ? (req.headers['content-type']?.startsWith('application/json') ? 'refresh' : 'token')
      : req.path === '/api/accounts/deviceauth/usercode' ? 'usercode'
      : null;
    if (kind === null) return; // device polls, authorize, revoke: answered at once
    const issuer = this.w.issuer;
    const ok = await new Promise<boolean>((resolve) => {
      if (this.#open) return resolve(true);
      this.#held.push({ kind, path: req.path, release: (outcome) => resolve(outcome === true) });
    });
    // The outcome decides the issuer's mode for this one answer (it is read after the hold).
    if (kind === 'refresh') issuer.refreshMode = ok ? 'normal' : 'serverError';
    if (kind === 'token') {
      // The code's exchange and the API key's share the endpoint; each has its own failure.
      issuer.tokenMode = ok ? 'normal' : 'serverError';
      issuer.apiKeyMode = ok ? 'normal' : 'fail';
    }
    if (kind === 'usercode') issuer.deviceMode = ok ? 'normal' : 'serverError';
  }

  /** Waits until something of `kind` is held (up to `timeoutMs`); whether it came. */
  heldSoon(kind: HeldKind, timeoutMs = 3_000): Promise<boolean> {
    return eventually(() => this.isHeld(kind), timeoutMs);
  }

  isHeld(kind: HeldKind): boolean {
    return this.#held.some((h) => h.kind === kind);
  }

  /** Lets the oldest held `kind` answer, with success or failure. */
  release(kind: HeldKind, ok: Outcome): void {
    const i = this.#held.findIndex((h) => h.kind === kind);
    if (i < 0) throw new Error(`nothing of kind ${kind} is held (held: ${this.#held.map((h) => h.kind).join(', ') || 'nothing'})`);
    const [held] = this.#held.splice(i, 1);
    held!.release(ok);
  }

  // ------------------------------------------------------------ storage

  /**
   * The load reads `text` from the FIFO. A regular file with the same text
   * takes the FIFO's place first (the server reads `auth.json` again, under
   * the lock before a write or refresh, and a FIFO with no writer would block
   * it); the load, already waiting in `open`, still reads the FIFO. The
   * watch's look at the new file is let happen while the credentials still
   * load (they are busy: the chart ignores it), so that it cannot land after
   * the load as a change.
   */
  async releaseLoad(text: string): Promise<void> {
    if (!this.#fifo) throw new Error('the load was released already');
    await this.loadOpened();
    const looks = () => this.w.trace(this.s).filter((l) => l.on === 'credentials.reloaded' || l.on === 'credentials.unreadable').length;
    const before = looks();
    otherProcessWrites(this.home, text);
    // No look comes when the watch already read these very credentials (another step wrote them).
    await eventually(() => looks() > before, 1_500);
    this.#fifo.release(text);
    this.#fifo = null;
  }

  /**
   * Waits until the server is opening the FIFO (a thread waits in the
   * kernel's `wait_for_partner`) or has it open: writing to it blocks until
   * a reader comes, and a write before the server looks would not be a load.
   */
  async loadOpened(timeoutMs = 5_000): Promise<void> {
    const pid = this.s.child.pid;
    const deadline = Date.now() + timeoutMs;
    const read = (path: string) => {
      try {
        return readFileSync(path, 'utf8').trim();
      } catch {
        return '';
      }
    };
    const has = (fd: string) => {
      try {
        return statSync(`/proc/${pid}/fd/${fd}`).ino === this.#fifoIno;
      } catch {
        return false;
      }
    };
    for (;;) {
      const opening = readdirSync(`/proc/${pid}/task`).some((task) => read(`/proc/${pid}/task/${task}/wchan`) === 'wait_for_partner');
      if (opening || readdirSync(`/proc/${pid}/fd`).some(has)) return;
      if (Date.now() > deadline) throw new Error('the server never opened auth.json to load it');
      await sleep(5);
    }
  }

  /** Holds `auth.lock`: every write of the server waits behind it. */
  async holdWrites(): Promise<void> {
    this.#authLock ??= await holdWithFlock(join(this.home, 'auth.lock'));
  }

  /** Lets the held write go on: it succeeds, or fails on `auth.json.lock` held past its 1 s wait. */
  async releaseWrite(ok: boolean): Promise<void> {
    if (!ok) this.#authJsonLock ??= await holdWithFlock(join(this.home, 'auth.json.lock'));
    else if (this.#authJsonLock) {
      await this.#authJsonLock.release();
      this.#authJsonLock = null;
    }
    if (this.#authLock) {
      await this.#authLock.release();
      this.#authLock = null;
    }
  }

  /** Another process writes `auth.json`; while the load is held, only once the load has it open. */
  async otherProcessWrites(text: string): Promise<void> {
    if (this.#fifo) await this.loadOpened();
    otherProcessWrites(this.home, text);
  }

  storedChatgpt = async () => JSON.stringify(await storedLogin(this.w.issuer));
  apiKeyFile = () => apiKeyFile(`sk-replay-${++this.#n}`);

  // ------------------------------------------------------------ the host

  /** Host refresh requests not answered yet. */
  hostAsks(): Wire[] {
    return this.s.messages.filter((m) => m.method === 'account/chatgptAuthTokens/refresh' && 'id' in m && !this.#answeredAsks.has(m.id));
  }

  /**
   * Lets the refresh in flight answer: the issuer's (managed credentials) or
   * the host's (host tokens), with `answer` (the issuer only succeeds or fails).
   */
  async answerRefresh(answer: { accountId: string; same?: boolean } | 'error'): Promise<void> {
    if (!(await eventually(() => this.isHeld('refresh') || this.hostAsks().length > 0))) {
      throw new Error('no refresh is in flight (neither the issuer nor the host was asked)');
    }
    if (this.isHeld('refresh')) this.release('refresh', answer !== 'error');
    else this.answerHost(answer);
  }

  /** The host tokens the server was last given (a login or a refresh answer). */
  hostAccessToken: string | null = null;

  /**
   * Answers the oldest host refresh request: tokens for `accountId` (fresh
   * ones, or `same`: the ones the server has), or an error.
   */
  answerHost(answer: { accountId: string; same?: boolean } | 'error'): void {
    const [ask] = this.hostAsks();
    if (!ask) throw new Error('the host was not asked to refresh');
    this.#answeredAsks.add(ask.id);
    if (answer === 'error') return this.s.send({ id: ask.id, error: { code: -32000, message: 'the host has no tokens' } });
    const accessToken = answer.same && this.hostAccessToken ? this.hostAccessToken : hostToken(`refresh-${++this.#n}`);
    // A refused workspace leaves the old tokens in place.
    if (answer.accountId === 'ws-1') this.hostAccessToken = accessToken;
    this.s.send({ id: ask.id, result: { accessToken, chatgptAccountId: answer.accountId, chatgptPlanType: null } });
  }

  // ------------------------------------------------------------ requests

  /** How many requests were sent so far (a step's own is the first it sends). */
  get sent(): number {
    return this.#requests.length;
  }

  /** The id of the `n`th request sent (from 0). */
  requestId(n: number): unknown {
    return this.#requests[n]?.id;
  }

  /** Sends a request without waiting for its answer (collected at the end). */
  request(method: string, params?: unknown): Promise<Wire> {
    const id = `replay-${this.#requests.length + 1}`;
    this.s.send(params === undefined ? { id, method } : { id, method, params });
    const response = this.s.response(id, 60_000);
    response.catch(() => {});
    this.#requests.push({ id, method, response });
    return response;
  }

  /** The id of a login this server started, from its log (known before the answer to `login/start`). */
  pendingLoginId(): string | null {
    // The latest login the server started (an earlier one's answer may come later).
    const started = [...this.s.stderr.matchAll(/login ([0-9a-f-]{36}): (asking the issuer|callback server listening)/g)];
    return started.at(-1)?.[1] ?? this.loginId;
  }

  unknownLoginId = () => randomUUID();

  // ------------------------------------------------------------ the trace

  /**
   * Waits until the server's trace shows `keys` (transitions of `machine`) in
   * this order after what earlier steps matched; other transitions may come
   * between (world actions cause some the generated step does not name).
   */
  async expectKeys(machine: string, keys: string[], what: string, timeoutMs = TRACE_TIMEOUT_MS): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const lines = this.w.trace(this.s).filter((l) => l.machine === machine);
      let at = this.#cursor.get(machine) ?? 0;
      let matched = 0;
      for (; at < lines.length && matched < keys.length; at++) if (keyOf(lines[at]!) === keys[matched]) matched++;
      if (matched === keys.length) {
        this.#cursor.set(machine, at);
        return;
      }
      if (Date.now() > deadline) {
        const since = lines.slice(this.#cursor.get(machine) ?? 0).map(keyOf);
        throw new Error(
          `${what}: expected ${machine} to take\n  ${keys.join('\n  ')}\nbut since the last step it took\n  ${since.join('\n  ') || '(nothing)'}\n` +
            `held: ${this.#held.map((h) => h.kind).join(', ') || 'nothing'}\nstderr:\n${this.s.stderr.slice(-2000)}`,
        );
      }
      await sleep(15);
    }
  }

  // ------------------------------------------------------------ the end

  /**
   * Ends the path: everything held answers (successfully), then every request
   * sent must have exactly one response and the server must still run.
   */
  async finish(): Promise<void> {
    this.#open = true;
    for (const held of this.#held.splice(0)) held.release(true);
    if (this.#fifo) await this.releaseLoad('{}');
    await this.releaseWrite(true);
    const answering = setInterval(() => {
      for (const ask of this.hostAsks()) {
        this.#answeredAsks.add(ask.id);
        this.s.send({ id: ask.id, result: { accessToken: hostToken('late'), chatgptAccountId: 'ws-1', chatgptPlanType: null } });
      }
    }, 20);
    try {
      for (const r of this.#requests) {
        await Promise.race([r.response, sleep(15_000).then(() => Promise.reject(new Error(`${r.method} (${String(r.id)}) never answered`)))]);
      }
    } finally {
      clearInterval(answering);
    }
    const answered = await this.s.request('getAuthStatus', { includeToken: false });
    if (!('result' in answered)) throw new Error(`the server no longer answers: ${JSON.stringify(answered)}`);
    for (const r of this.#requests) {
      const responses = this.s.messages.filter((m) => m.id === r.id && m.method === undefined);
      if (responses.length !== 1) throw new Error(`${r.method} (${String(r.id)}) got ${responses.length} responses`);
    }
  }
}

const failed = (outcome: Outcome): Reply =>
  outcome === 'unauthorized' ? { status: 401, json: { error: 'token_expired' } } : { status: 503, json: { error: 'unavailable' } };

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `ready` until it holds or `timeoutMs` passes; whether it held. */
export async function eventually(ready: () => boolean, timeoutMs = 3_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!ready()) {
    if (Date.now() > deadline) return false;
    await sleep(10);
  }
  return true;
}
