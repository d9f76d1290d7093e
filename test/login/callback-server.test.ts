import { createServer } from 'node:net';
import { request } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { openCallbackServer, type CallbackServer } from '../../src/effects/login/callback-server.js';
import { createState } from '../../src/effects/login/oauth.js';
import { captureLog } from '../helpers/login.js';
import { Issuer } from '../helpers/issuer.js';

// Callback servers here bind OS-assigned ports; test/login/ports.test.ts alone uses 1455/1457.

interface Heard {
  codes: string[];
  failed: string[];
  cancels: number;
  successPages: number;
}

const open: CallbackServer[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((s) => s.close()));
});

async function start(opts: { issuer?: string; signal?: AbortSignal } = {}) {
  const state = createState();
  const heard: Heard = { codes: [], failed: [], cancels: 0, successPages: 0 };
  const { log, lines } = captureLog();
  const server = await openCallbackServer({
    ports: [0],
    issuer: opts.issuer ?? 'http://127.0.0.1:9',
    state,
    log,
    ...(opts.signal ? { signal: opts.signal } : {}),
    listener: {
      onCode: (code) => heard.codes.push(code),
      onFailed: (detail) => heard.failed.push(detail),
      onCancel: () => heard.cancels++,
      onSuccessPage: () => heard.successPages++,
    },
  });
  open.push(server);
  const url = (path: string) => `http://127.0.0.1:${server.port}${path}`;
  return { server, state, heard, url, logs: lines };
}

async function get(url: string, init: RequestInit = {}) {
  const res = await fetch(url, { redirect: 'manual', ...init });
  return { status: res.status, type: res.headers.get('content-type'), location: res.headers.get('location'), body: await res.text() };
}

function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.once('error', () => resolve(false));
    probe.listen(port, '127.0.0.1', () => probe.close(() => resolve(true)));
  });
}

describe('callback server (SPEC §6.1)', () => {
  it('answers a wrong state with 400 State mismatch as text/plain and keeps waiting', async () => {
    const { url, heard } = await start();
    expect(await get(url('/auth/callback?code=abc&state=wrong'))).toMatchObject({
      status: 400,
      type: 'text/plain; charset=UTF-8',
      body: 'State mismatch',
    });
    expect(heard).toEqual({ codes: [], failed: [], cancels: 0, successPages: 0 });
  });

  it('answers a missing state, any method, and an issuer error with a wrong state the same way', async () => {
    const { url, heard } = await start();
    for (const [path, method] of [
      ['/auth/callback?code=abc', 'GET'],
      ['/auth/callback?code=abc&state=x', 'POST'],
      ['/auth/callback?error=access_denied&state=x', 'GET'],
    ] as const) {
      expect((await get(url(path), { method })).body).toBe('State mismatch');
    }
    expect(heard.failed).toEqual([]);
  });

  it('holds a good callback until finish, then redirects to /success with the reference query', async () => {
    const issuer = await Issuer.start();
    try {
      const { server, url, state, heard } = await start({ issuer: issuer.origin });
      const callback = get(url(`/auth/callback?code=the-code&state=${state}`));
      await expect.poll(() => heard.codes).toEqual(['the-code']);
      const tokens = await issuer.issueTokens();
      expect(await server.finish({ ok: true, idToken: tokens.id_token, accessToken: tokens.access_token })).toBe(true);
      const answer = await callback;
      expect(answer).toMatchObject({ status: 302, type: null, body: '' });
      const location = new URL(answer.location!);
      expect(`${location.origin}${location.pathname}`).toBe(`http://127.0.0.1:${server.port}/success`);
      expect([...location.searchParams]).toEqual([
        ['id_token', tokens.id_token],
        ['needs_setup', 'false'],
        ['org_id', ''],
        ['project_id', ''],
        ['plan_type', 'plus'],
        ['platform_url', 'https://platform.api.openai.org'],
      ]);
    } finally {
      await issuer.stop();
    }
  });

  it('serves the success page titled Sign into Codex and reports it after a redirect', async () => {
    const { server, url, state, heard } = await start();
    const callback = get(url(`/auth/callback?code=c&state=${state}`));
    await expect.poll(() => heard.codes.length).toBe(1);
    await server.finish({ ok: true, idToken: 'a.b.c', accessToken: 'a.b.c' });
    await callback;
    const page = await get(url('/success?whatever=1'));
    expect(page).toMatchObject({ status: 200, type: 'text/html; charset=utf-8' });
    expect(page.body).toContain('<title>Sign into Codex</title>');
    await expect.poll(() => heard.successPages).toBe(1);
  });

  it('does not count a /success visit that no redirect led to', async () => {
    const { url, heard } = await start();
    expect((await get(url('/success'))).status).toBe(200);
    expect(heard.successPages).toBe(0);
  });

  it('refuses a replayed callback with 409 and reports the code once', async () => {
    const { server, url, state, heard } = await start();
    const first = get(url(`/auth/callback?code=c&state=${state}`));
    await expect.poll(() => heard.codes.length).toBe(1);
    expect(await get(url(`/auth/callback?code=c&state=${state}`))).toMatchObject({ status: 409, body: 'This sign-in was already received' });
    await server.finish({ ok: false, message: 'nope' });
    await first;
    expect(heard.codes).toEqual(['c']);
  });

  it('ends the flow on an issuer error with the right state and shows it', async () => {
    const { url, state, heard } = await start();
    const page = await get(url(`/auth/callback?error=access_denied&error_description=User+said+no&state=${state}`));
    expect(page).toMatchObject({ status: 200, type: 'text/html; charset=utf-8' });
    expect(page.body).toContain('Sign-in failed: User said no');
    await expect.poll(() => heard.failed).toEqual(['Sign-in failed: User said no']);
  });

  it('ends the flow when the right state comes without a code', async () => {
    const { url, state, heard } = await start();
    await get(url(`/auth/callback?state=${state}`));
    await expect.poll(() => heard.failed).toEqual(['Missing authorization code. Sign-in could not be completed.']);
  });

  it('answers a held callback with the error page when the login fails', async () => {
    const { server, url, state, heard } = await start();
    const callback = get(url(`/auth/callback?code=c&state=${state}`));
    await expect.poll(() => heard.codes.length).toBe(1);
    await server.finish({ ok: false, message: 'Token exchange failed: <b>boom</b>' });
    const page = await callback;
    expect(page.status).toBe(200);
    expect(page.body).toContain('Token exchange failed: &lt;b&gt;boom&lt;/b&gt;');
  });

  it('answers /cancel with 200 Login cancelled and no Content-Type, then reports it', async () => {
    const { url, heard } = await start();
    expect(await get(url('/cancel'))).toEqual({ status: 200, type: null, location: null, body: 'Login cancelled' });
    await expect.poll(() => heard.cancels).toBe(1);
  });

  it('answers other paths with 404 Not Found as text/plain', async () => {
    const { url } = await start();
    for (const path of ['/', '/auth', '/auth/callback/x', '/favicon.ico']) {
      expect(await get(url(path))).toMatchObject({ status: 404, type: 'text/plain; charset=UTF-8', body: 'Not Found' });
    }
  });

  it('refuses requests that name another host (DNS rebinding)', async () => {
    const { server, state, heard } = await start();
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(
        { host: '127.0.0.1', port: server.port, path: `/auth/callback?code=c&state=${state}`, headers: { Host: 'evil.example:1455' } },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on('error', reject);
      req.end();
    });
    expect(status).toBe(403);
    expect(heard.codes).toEqual([]);
  });

  it('takes a pasted URL through the same checks, and a code only once', async () => {
    const { server, state } = await start();
    expect(server.checkPaste('http://127.0.0.1:1/auth/callback?code=c&state=nope')).toEqual({ kind: 'stateMismatch' });
    expect(server.checkPaste(`http://127.0.0.1:1/auth/callback?state=${state}`)).toEqual({ kind: 'missingCode' });
    expect(server.checkPaste(`http://127.0.0.1:1/auth/callback?code=c&state=${state}`)).toEqual({ kind: 'code', code: 'c' });
    expect(server.checkPaste(`http://127.0.0.1:1/auth/callback?code=c&state=${state}`)).toEqual({ kind: 'alreadyUsed' });
  });

  it('releases its port on close', async () => {
    const { server } = await start();
    expect(await portIsFree(server.port)).toBe(false);
    await server.close();
    expect(await portIsFree(server.port)).toBe(true);
  });

  it('releases its port when its signal aborts', async () => {
    const abort = new AbortController();
    const { server } = await start({ signal: abort.signal });
    abort.abort();
    await expect.poll(() => portIsFree(server.port)).toBe(true);
  });

  it('never logs the code or the state', async () => {
    const { server, url, state, heard, logs } = await start();
    await get(url('/auth/callback?code=secret-code-123&state=wrong-state-456'));
    const pending = get(url(`/auth/callback?code=secret-code-789&state=${state}`));
    await expect.poll(() => heard.codes.length).toBe(1);
    await server.finish({ ok: false, message: 'x' });
    await pending;
    expect(logs.length).toBeGreaterThan(0);
    for (const secret of ['secret-code-123', 'wrong-state-456', 'secret-code-789', state]) expect(logs.join('\n')).not.toContain(secret);
  });
});
