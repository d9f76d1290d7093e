import { createServer, type Server } from 'node:net';
import { connect } from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { httpGet, inspectUrls, rootStates, SseReader } from '../helpers/inspect.js';
import { chatgptAuthFile } from '../helpers/jwt.js';
import { ServerProcess } from '../helpers/server-process.js';

describe('--inspect-ui and --inspect', () => {
  let server: ServerProcess | undefined;
  const readers: SseReader[] = [];
  let blocker: Server | undefined;
  afterEach(async () => {
    for (const r of readers.splice(0)) r.close();
    server?.kill();
    server = undefined;
    await new Promise<void>((resolve) => (blocker ? blocker.close(() => resolve()) : resolve()));
    blocker = undefined;
  });

  async function startUi(args = ['--inspect-ui'], env: Record<string, string | undefined> = {}) {
    server = ServerProcess.start({ args, env });
    await server.initialize();
    return { s: server, urls: await inspectUrls(server, { live: args.some((a) => a.startsWith('--inspect-ui')), stately: args.includes('--inspect') || env.CODEX_ACCOUNT_SERVER_INSPECT === '1' }) };
  }

  async function feed(port: number, token: string, path = '/events') {
    const reader = await SseReader.open(port, `${path}?token=${token}`);
    readers.push(reader);
    return reader;
  }

  it('prints a 127.0.0.1 URL with a random token on stderr and serves the page there under a strict CSP', async () => {
    const { urls } = await startUi();
    expect(urls.live).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/\?token=[A-Za-z0-9_-]{43}$/);
    const page = await httpGet(urls.port, `/?token=${urls.token}`);
    expect(page.status).toBe(200);
    expect(page.headers['content-security-policy']).toMatch(/default-src 'none'; script-src 'nonce-[^']+'/);
    expect(page.headers['referrer-policy']).toBe('no-referrer');
    for (const id of ['account:credentials.loggedOut', 'account:login.chatgptPending.waiting', 'session:refreshing', 'loginAttempt:open.running.waiting']) {
      expect(page.body).toContain(`id="${id}"`);
    }
    // Child machines' diagrams wait, hidden, until one of their actors runs.
    expect(page.body).toMatch(/<section class="wide" data-machine="session" data-child="true" hidden>/);
    expect(page.body).not.toMatch(/https?:\/\/(?!www\.w3\.org)/);
  });

  it('refuses requests without the token, with a wrong one, or from a foreign Host or Origin, and says so on stderr', async () => {
    const { s, urls } = await startUi();
    const host = { Host: `127.0.0.1:${urls.port}` };
    expect((await httpGet(urls.port, '/')).status).toBe(403);
    expect((await httpGet(urls.port, '/events?token=nope')).status).toBe(403);
    expect((await httpGet(urls.port, `/?token=${urls.token}`, { Host: `evil.example:${urls.port}` })).status).toBe(403);
    expect((await httpGet(urls.port, `/events?token=${urls.token}`, { ...host, Origin: 'http://evil.example' })).status).toBe(403);
    expect((await httpGet(urls.port, `/?token=${urls.token}`, { Host: `localhost:${urls.port}`, Origin: `http://localhost:${urls.port}` })).status).toBe(200);
    await s.stderrMatching(/refused GET \/: missing token/);
    await s.stderrMatching(/refused GET \/events: wrong token/);
    await s.stderrMatching(/refused GET \/: foreign Host header/);
    await s.stderrMatching(/refused GET \/events: foreign Origin header/);
    expect(s.stderr).not.toContain('token=nope');
    expect((await s.request('account/read', {})).result).toMatchObject({ account: null });
  });

  it('answers an unknown path with 404, says so on stderr, and keeps serving JSON-RPC', async () => {
    const { s, urls } = await startUi();
    expect((await httpGet(urls.port, `/admin?token=${urls.token}`)).status).toBe(404);
    await s.stderrMatching(/refused GET \/admin: unknown path \(404\)/);
    expect((await s.request('account/read', {})).result).toMatchObject({ account: null });
  });

  it('streams state changes and JSON-RPC method, id and timing, never params, as a login happens', async () => {
    const { s, urls } = await startUi();
    const reader = await feed(urls.port, urls.token);
    // The credentials load in the background: a busy machine may still be `loading` when the page connects.
    const loaded = await reader.waitFor((m) => rootStates([m]).some((v: any) => v.credentials === 'loggedOut'));
    expect(rootStates([loaded])).toEqual([{ credentials: 'loggedOut', login: 'idle' }]);
    await s.request('account/login/start', { type: 'apiKey', apiKey: 'sk-visible-only-on-stdin-123456' }, 'login-7');
    await reader.waitFor((m) => m.type === 'snapshot' && m.snapshot.value?.credentials === 'apiKey');
    const response = await reader.waitFor((m) => m.type === 'log' && m.entry.kind === 'rpc' && m.entry.rpc.kind === 'response' && m.entry.rpc.id === 'login-7');
    expect(response.entry.rpc).toEqual({ dir: 'out', kind: 'response', method: 'account/login/start', id: 'login-7', ms: expect.any(Number), errorCode: null });
    await reader.waitFor((m) => m.type === 'log' && m.entry.kind === 'emitted' && m.entry.event.type === 'account.updated');
    await reader.waitFor((m) => m.type === 'log' && m.entry.kind === 'rpc' && m.entry.rpc.method === 'account/updated');
    const snapshot = await reader.waitFor((m) => m.type === 'snapshot' && m.snapshot.value?.credentials === 'apiKey');
    expect(snapshot.snapshot.context.stored).toEqual({ kind: 'apiKey', apiKey: '[redacted]' });
    expect(snapshot.snapshot.active).toEqual(['account:credentials', 'account:credentials.apiKey', 'account:login', 'account:login.idle']);
    // Snapshots within one 50 ms batch coalesce: the brief `saving` may or may not show.
    const states = rootStates(reader.messages).map((v: any) => v.credentials);
    expect(states.slice(0, states.indexOf('loggedOut')).every((c) => c === 'loading')).toBe(true);
    expect(states.at(-1)).toBe('apiKey');
    expect(reader.raw).not.toContain('sk-visible-only-on-stdin-123456');
  });

  it('streams the session child machine with its active states while ChatGPT credentials are active, and its stop on logout', async () => {
    server = ServerProcess.start({ args: ['--inspect-ui'], auth: chatgptAuthFile() });
    await server.initialize();
    const urls = await inspectUrls(server);
    const reader = await feed(urls.port, urls.token);
    // The credentials load in the background: the session shows in the init message or right after it.
    const views = (m: any): any[] => (m.type === 'init' ? m.actors : m.type === 'snapshot' ? [m.snapshot] : []);
    const sessionReady = (v: any) => v.machine === 'session' && v.value === 'ready';
    const session = views(await reader.waitFor((m) => views(m).some(sessionReady))).find(sessionReady);
    expect(session).toMatchObject({ id: 'session', status: 'active', active: ['session:ready'] });
    expect(session.context.accessToken).toBe('[redacted]');
    expect(rootStates(reader.messages).at(-1)).toEqual({ credentials: { chatgptSession: 'chatgpt' }, login: 'idle' });
    await server.request('account/logout', {});
    await reader.waitFor((m) => m.type === 'snapshot' && m.snapshot.machine === 'session' && m.snapshot.status === 'stopped');
    expect(reader.raw).not.toContain(chatgptAuthFile().tokens.access_token);
    expect(reader.raw).not.toContain('rt-1');
  });

  it('serves two page clients at once and tells stderr about each', async () => {
    const { s, urls } = await startUi();
    const a = await feed(urls.port, urls.token);
    const b = await feed(urls.port, urls.token);
    await s.stderrMatching(/client #2 connected to \/events \(2 open\)/);
    await s.request('account/logout', {});
    for (const r of [a, b]) await r.waitFor((m) => m.type === 'log' && m.entry.kind === 'rpc' && m.entry.rpc.method === 'account/logout');
  });

  it('goes on serving when a page client disconnects mid-stream', async () => {
    const { s, urls } = await startUi();
    const reader = await feed(urls.port, urls.token);
    await reader.waitFor((m) => m.type === 'init');
    reader.close();
    await s.stderrMatching(/client #1 on \/events disconnected \(0 open\)/);
    for (let i = 0; i < 20; i++) s.send({ id: 100 + i, method: 'account/read', params: {} });
    await s.response(119);
    expect(s.messages.filter((m) => typeof m.id === 'number' && m.id >= 100)).toHaveLength(20);
  });

  it('drops events for a client that never reads instead of buffering them, and says so', async () => {
    const { s, urls } = await startUi();
    // A raw socket that sends the request and then never reads a byte.
    const socket = connect(urls.port, '127.0.0.1');
    await new Promise<void>((resolve) => socket.once('connect', resolve));
    socket.write(`GET /events?token=${urls.token} HTTP/1.1\r\nHost: 127.0.0.1:${urls.port}\r\n\r\n`);
    socket.pause();
    await s.stderrMatching(/client #1 connected/);
    try {
      // Long string ids make each traced request and response ~4 KiB: ~12 MiB in all, more than the socket buffers hold.
      const N = 1500;
      const id = (i: number) => `${'x'.repeat(4096)}-${i}`;
      for (let i = 0; i < N; i++) s.send({ id: id(i), method: 'account/read', params: {} });
      await s.response(id(N - 1), 20_000);
      await s.stderrMatching(/client #1 on \/events is not reading; dropping events until it does/);
    } finally {
      socket.destroy();
    }
  });

  it('says on stderr that a busy port keeps the page off, and serves JSON-RPC anyway', async () => {
    blocker = createServer();
    await new Promise<void>((resolve) => blocker!.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as AddressInfo).port;
    server = ServerProcess.start({ args: [`--inspect-ui=${port}`] });
    await server.initialize();
    await server.stderrMatching(new RegExp(`inspect server could not start \\(port ${port} is busy\\); serving JSON-RPC without it`));
    expect((await server.request('account/read', {})).result).toMatchObject({ account: null });
  });

  it('answers malformed HTTP with 400 and keeps serving', async () => {
    const { s, urls } = await startUi();
    const socket = connect(urls.port, '127.0.0.1');
    let answer = '';
    socket.setEncoding('utf8');
    socket.on('data', (c: string) => (answer += c));
    socket.write('NOT HTTP AT ALL\r\n\r\n');
    await new Promise<void>((resolve) => socket.on('close', () => resolve()));
    expect(answer).toMatch(/^HTTP\/1\.1 400/);
    await s.stderrMatching(/inspect server: malformed request/);
    expect((await s.request('account/read', {})).result).toMatchObject({ account: null });
  });

  it('refuses a bad --inspect-ui port with exit code 2 and a message', async () => {
    server = ServerProcess.start({ args: ['--inspect-ui=99999'] });
    expect(await server.exited).toEqual({ code: 2, signal: null });
    expect(server.stderr).toContain('--inspect-ui: expected a port number (0-65535), got "99999"');
  });

  it('feeds the Stately inspector bridge with the machine definition and redacted snapshots (--inspect)', async () => {
    const { s, urls } = await startUi(['--inspect']);
    expect(urls.stately).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/stately\?token=/);
    const page = await httpGet(urls.port, `/stately?token=${urls.token}`);
    expect(page.body).toContain('<iframe id="inspector" src="https://stately.ai/inspect">');
    expect(page.headers['content-security-policy']).toContain('frame-src https://stately.ai');
    const reader = await feed(urls.port, urls.token, '/stately/events');
    const actor = await reader.waitFor((m) => m.type === '@xstate.actor' && m.name === 'account');
    const definition = JSON.parse(actor.definition);
    expect(definition).toMatchObject({ id: 'account', type: 'parallel' });
    expect(definition.states.credentials).toMatchObject({ initial: 'loading' });
    expect(Object.keys(definition.states.login.states).sort()).toEqual(['chatgptPending', 'idle']);
    await s.request('account/login/start', { type: 'apiKey', apiKey: 'sk-bridge-secret-98765' });
    const snap = await reader.waitFor((m) => m.type === '@xstate.snapshot' && m.snapshot.value?.credentials === 'apiKey');
    expect(snap.snapshot.context.stored).toEqual({ kind: 'apiKey', apiKey: '[redacted]' });
    await reader.waitFor((m) => m.type === '@xstate.event' && m.event.type === 'login.apiKey');
    expect(reader.raw).not.toContain('sk-bridge-secret-98765');
    // The live page is not mounted with --inspect alone.
    expect((await httpGet(urls.port, `/?token=${urls.token}`)).status).toBe(404);
  });

  it('turns on the Stately bridge from CODEX_ACCOUNT_SERVER_INSPECT=1', async () => {
    const { urls } = await startUi([], { CODEX_ACCOUNT_SERVER_INSPECT: '1' });
    expect(urls.stately).toMatch(/\/stately\?token=/);
  });

  it('loads no inspection code when inspection is off, and loads it when asked', async () => {
    const loads = async (args: string[]) => {
      const s = ServerProcess.start({ args, env: { NODE_DEBUG: 'module' } });
      try {
        await s.initialize();
        return s.stderr;
      } finally {
        s.kill();
      }
    };
    expect(await loads([])).not.toMatch(/inspect\.cjs/);
    expect(await loads(['--inspect-ui'])).toMatch(/inspect\.cjs/);
  });
});
